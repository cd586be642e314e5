/**
 * Compares a device's guest content with a raw file (QEMU's own conversion of the same image),
 * in bounded chunks; returns the first differing guest offset, or -1.
 */
import { open } from 'node:fs/promises';
import type { BlockDevice } from '../../src/engine/types.js';

export async function firstDifference(
  device: BlockDevice,
  rawPath: string,
  ranges: { start: number; length: number }[] = [{ start: 0, length: device.virtualSize }],
  chunk = 4 << 20,
): Promise<number> {
  const raw = await open(rawPath, 'r');
  try {
    for (const r of ranges) {
      for (let pos = r.start; pos < r.start + r.length; pos += chunk) {
        const n = Math.min(chunk, r.start + r.length - pos);
        const ours = await device.read(pos, n);
        const theirs = new Uint8Array(n);
        await raw.read(theirs, 0, n, pos);
        if (!Buffer.from(ours.buffer, ours.byteOffset, n).equals(Buffer.from(theirs.buffer, 0, n))) {
          for (let i = 0; i < n; i++) if (ours[i] !== theirs[i]) return pos + i;
        }
      }
    }
    return -1;
  } finally {
    await raw.close();
  }
}
