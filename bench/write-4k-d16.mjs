// 4 KiB writes scattered over a preallocated (preallocation=full) qcow2 image, 16 in flight.
import { preallocatedImage } from './lib.mjs';
import { requestBenchmark, SCATTER_STEP } from './request-bench.mjs';
import { isMain, main } from './table.mjs';

export default requestBenchmark({
  name: 'write-4k-d16',
  description: '4 KiB writes, depth 16, scattered over a preallocated image',
  goal: 1.0, // issue "The optimized engine": at least as fast as QEMU
  image: preallocatedImage,
  options: ['-w', '-d', '16', '-s', '4096', '-S', String(SCATTER_STEP)],
  count: (sizes) => sizes.requests,
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
