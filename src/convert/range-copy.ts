/**
 * Copying a range of one device's guest bytes to an offset of another, every byte written (zeros
 * too), as `qemu-img dd` copies its blocks: the block size only decides the sizes involved, not
 * what ends up in the output, so the bytes go in chunks of COPY_CHUNK_BYTES whatever it is.
 */
import type { BlockDevice } from '../engine/types.js';
import { usage } from '../errors.js';
import { COPY_CHUNK_BYTES } from '../limits.js';

export async function copyRange(source: BlockDevice, from: number, target: BlockDevice, to: number, length: number): Promise<void> {
  if (from < 0 || length < 0 || from + length > source.virtualSize) {
    throw usage(`copy: [${from}, ${from + length}) is not inside the source (${source.virtualSize} bytes)`);
  }
  if (to < 0 || to + length > target.virtualSize) throw usage(`copy: [${to}, ${to + length}) is not inside the target (${target.virtualSize} bytes)`);
  const buffer = new Uint8Array(Math.min(COPY_CHUNK_BYTES, length));
  for (let done = 0; done < length; ) {
    const n = Math.min(buffer.byteLength, length - done);
    const chunk = buffer.subarray(0, n);
    await source.readInto(from + done, chunk);
    await target.write(to + done, chunk);
    done += n;
  }
}
