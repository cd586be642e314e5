// 4 KiB reads scattered over a fully allocated qcow2 image, 16 in flight.
import { allocatedImage } from './lib.mjs';
import { requestBenchmark, SCATTER_STEP } from './request-bench.mjs';
import { isMain, main } from './table.mjs';

export default requestBenchmark({
  name: 'read-4k-d16',
  description: '4 KiB reads, depth 16, scattered (step 1 MiB + 4 KiB) over a fully allocated image',
  goal: 1.0, // issue "The optimized engine": at least as fast as QEMU
  image: allocatedImage,
  options: ['-d', '16', '-s', '4096', '-S', String(SCATTER_STEP)],
  count: (sizes) => sizes.requests,
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
