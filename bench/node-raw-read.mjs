// The peer of seq-read-1m: reads FILE sequentially in SIZE-byte fs.readSync calls, COUNT times
// (wrapping at the end), and prints qemu-img bench's closing line.
//   node bench/node-raw-read.mjs FILE SIZE COUNT
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const [file, sizeText, countText] = process.argv.slice(2);
if (!file || !sizeText || !countText) {
  process.stderr.write('usage: node bench/node-raw-read.mjs FILE SIZE COUNT\n');
  process.exit(2);
}
const size = Number(sizeText);
const count = Number(countText);
const fd = openSync(file, 'r');
const fileSize = fstatSync(fd).size;
const buf = Buffer.allocUnsafe(size);
const t0 = process.hrtime.bigint();
let offset = 0;
for (let i = 0; i < count; i++) {
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buf, done, size - done, offset + done);
    if (n === 0) throw new Error(`short read at ${offset + done}`);
    done += n;
  }
  offset = (offset + size) % fileSize;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
closeSync(fd);
process.stdout.write(`Sending ${count} read requests, ${size} bytes each, 1 in parallel (starting at offset 0, step size ${size})\n`);
process.stdout.write(`Run completed in ${seconds.toFixed(3)} seconds.\n`);
