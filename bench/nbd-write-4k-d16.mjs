// fio --ioengine=nbd: 4 KiB random writes, depth 16, on a fresh copy of a preallocated image per run.
import { preallocatedImage } from './lib.mjs';
import { nbdBenchmark } from './nbd-lib.mjs';
import { isMain, main } from './table.mjs';

export default nbdBenchmark({
  name: 'nbd-write-4k-d16',
  description: 'NBD (fio, unix socket): 4 KiB random writes, depth 16, fresh copy of a preallocated image per run',
  goal: 1.5, // issue 11, bench/: >= 1.5x qemu-nbd on the random rows
  unit: 'req/s',
  image: preallocatedImage,
  fresh: true,
  job: { rw: 'randwrite', bs: '4k', iodepth: 16 },
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
