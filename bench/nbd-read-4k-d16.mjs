// fio --ioengine=nbd: 4 KiB random reads, depth 16, over a fully allocated image, ours vs qemu-nbd.
import { allocatedImage } from './lib.mjs';
import { nbdBenchmark } from './nbd-lib.mjs';
import { isMain, main } from './table.mjs';

export default nbdBenchmark({
  name: 'nbd-read-4k-d16',
  description: 'NBD (fio, unix socket): 4 KiB random reads, depth 16, fully allocated image',
  goal: 1.5, // issue 11, bench/: >= 1.5x qemu-nbd on the random rows
  unit: 'req/s',
  image: allocatedImage,
  job: { rw: 'randread', bs: '4k', iodepth: 16 },
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
