// fio --ioengine=nbd: 8 jobs at once, each its own NBD connection, 1 MiB sequential reads (depth 1
// each) of a zlib-compressed image, each job in its own eighth of the disk; aggregate throughput.
import { compressedImage } from './lib.mjs';
import { nbdBenchmark } from './nbd-lib.mjs';
import { isMain, main } from './table.mjs';

export default nbdBenchmark({
  name: 'nbd-compressed-8-clients',
  description: 'NBD (fio, unix socket): 8 clients (numjobs=8, -e 8), 1 MiB sequential reads each in its own eighth, compressed image, aggregate',
  goal: 1.5, // issue 11, bench/: >= 1.5x qemu-nbd on the compressed rows
  unit: 'MiB/s',
  image: compressedImage,
  server: { shared: 8 },
  job: (sizes) => {
    const eighth = sizes.imageBytes / 8;
    return { rw: 'read', bs: '1m', iodepth: 1, numjobs: 8, extra: [`--size=${eighth}`, `--offset_increment=${eighth}`] };
  },
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
