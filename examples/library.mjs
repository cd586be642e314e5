import { createWriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { convertImage, createImage, guestStream, isQcow2Error, openImage } from 'qcow2-verified';

const dir = await mkdtemp(join(tmpdir(), 'qcow2-example-'));
const image = join(dir, 'disk.qcow2');
await createImage(image, { size: 64 * 1024 * 1024 }); // as `qemu-img create -f qcow2 disk.qcow2 64M`

const disk = await openImage(image); // the format is probed; { readOnly: true } to only read
try {
  await disk.write(1024 * 1024, new Uint8Array(4096).fill(0xab));
  await disk.flush();
  const bytes = await disk.read(1024 * 1024, 4096);
  console.log('read back:', bytes.every((b) => b === 0xab));
  // Which ranges hold data and which read as zeros (depth: the layer of the backing chain that answers).
  for (const e of await disk.blockStatus(0, disk.virtualSize)) console.log(e);
  // The guest bytes as a Node Readable (zero ranges are not read).
  await pipeline(guestStream(disk), createWriteStream(join(dir, 'disk.raw')));
} catch (err) {
  if (isQcow2Error(err)) console.error(err.describe()); // e.g. `corrupt: l2_offset at 0x30000: …`
  throw err;
} finally {
  await disk.close();
}

// A streaming convert: only what holds data is read, a few 2 MiB chunks in flight, compressed clusters.
await convertImage(image, join(dir, 'copy.qcow2'), {
  outputFormat: 'qcow2',
  compress: true,
  onProgress: (done, total) => console.log(`converted ${Math.round((100 * done) / total)}%`),
});
console.log('done in', dir);
