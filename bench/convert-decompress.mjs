// convert -O raw of the compressed image that convert-compress's input makes (made by qemu-img).
import { convertBenchmark } from './convert-bench.mjs';
import { compressedImage } from './lib.mjs';
import { isMain, main } from './table.mjs';

export default convertBenchmark({
  name: 'convert-decompress',
  description: 'convert -O raw of a zlib-compressed qcow2 (half random, half text)',
  goal: 1.0, // issue "The optimized engine": at least as fast as QEMU
  input: compressedImage,
  oursOptions: ['-f', 'qcow2', '-O', 'raw'],
  qemuOptions: ['-W', '-m', '16', '-f', 'qcow2', '-O', 'raw'],
  peerName: 'qemu-img convert -W -m 16 -O raw',
});

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
