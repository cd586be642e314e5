// fio --ioengine=nbd: 64 KiB sequential reads, depth 4, over a fully allocated image.
import { allocatedImage } from './lib.mjs';
import { nbdBenchmark } from './nbd-lib.mjs';
import { isMain, main } from './table.mjs';

export default nbdBenchmark({
  name: 'nbd-seq-read-64k',
  description: 'NBD (fio, unix socket): 64 KiB sequential reads, depth 4, fully allocated image',
  goal: 1.0, // issue 11, bench/: >= 1.0x qemu-nbd on 64 KiB sequential
  unit: 'MiB/s',
  image: allocatedImage,
  job: { rw: 'read', bs: '64k', iodepth: 4 },
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
