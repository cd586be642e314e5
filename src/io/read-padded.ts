/** Reads as QEMU's block layer does: bytes past the end of the file read as zeros. */
import type { BlockFile } from './block-file.js';

export async function readPadded(file: BlockFile, offset: number, length: number, fileSize: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  if (!Number.isSafeInteger(offset) || offset >= fileSize || length === 0) return out;
  await file.readInto(offset, out.subarray(0, Math.min(length, fileSize - offset)));
  return out;
}
