// 4 KiB writes scattered over a preallocated (preallocation=full) qcow2 image, one at a time.
import { preallocatedImage } from './lib.mjs';
import { requestBenchmark, SCATTER_STEP } from './request-bench.mjs';
import { isMain, main } from './table.mjs';

export default requestBenchmark({
  name: 'write-4k-d1',
  description: '4 KiB writes, depth 1, scattered over a preallocated image',
  goal: 0.8, // issue "The optimized engine": writes at depth 1 at least 0.8x QEMU
  image: preallocatedImage,
  options: ['-w', '-d', '1', '-s', '4096', '-S', String(SCATTER_STEP)],
  count: (sizes) => sizes.requestsD1,
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
