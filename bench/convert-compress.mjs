// convert -c of a raw file (half random, half text, alternating by MiB) to a compressed qcow2.
import { convertBenchmark } from './convert-bench.mjs';
import { mixedRaw } from './lib.mjs';
import { isMain, main } from './table.mjs';

export default convertBenchmark({
  name: 'convert-compress',
  description: 'convert -c -O qcow2 of a half-random/half-text raw file (zlib)',
  goal: 2.0, // issue "The optimized engine": compressing convert -c at least 2x qemu-img convert -c
  input: mixedRaw,
  oursOptions: ['-c', '-f', 'raw', '-O', 'qcow2'],
  qemuOptions: ['-c', '-f', 'raw', '-O', 'qcow2'],
  peerName: 'qemu-img convert -c (single-threaded zlib)',
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
