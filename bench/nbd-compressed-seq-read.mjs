// fio --ioengine=nbd: 1 MiB sequential reads, depth 4, of a zlib-compressed image (network boot).
import { compressedImage } from './lib.mjs';
import { nbdBenchmark } from './nbd-lib.mjs';
import { isMain, main } from './table.mjs';

export default nbdBenchmark({
  name: 'nbd-compressed-seq-read',
  description: 'NBD (fio, unix socket): 1 MiB sequential reads, depth 4, zlib-compressed image (half random, half text)',
  goal: 1.5, // issue 11, bench/: >= 1.5x qemu-nbd on the compressed rows
  unit: 'MiB/s',
  image: compressedImage,
  job: { rw: 'read', bs: '1m', iodepth: 4 },
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
