/**
 * The safe half of `qemu-img rebase` (QEMU 7.2's img_rebase): before an image is put over another
 * backing file, every guest range it does not allocate itself, where the old backing chain and
 * the new backing file read differently, gets the old content written into the image, so that
 * its guest content stays what it was.
 *
 * As qemu-img does it: in steps of REBASE_CHUNK_BYTES, each step cut to a run of the image's own
 * allocation (allocated runs are skipped), and when the new backing file is a layer of the old
 * chain, to a run of what the layers above it allocate (the rest cannot differ). Backing files
 * shorter than the image read as zeros past their end. The two contents are compared in 512-byte
 * sectors; each run of differing sectors is written, or written as zeros where the old chain ends
 * before it. Writing part of a cluster copies the rest of it from the old chain (copy on write),
 * so the content of every cluster stays the same as a whole.
 */
import type { BlockDevice } from '../engine/types.js';
import { REBASE_CHUNK_BYTES } from '../limits.js';
import { allocationRun, allocationRunAbove } from './allocation.js';

const SECTOR = 512;

export interface KeepContentOptions {
  /** The image, open for writing over its old backing chain (`image.backing`, or none). */
  image: BlockDevice;
  /** What the image will read from once rebased; undefined: nothing (reads as zeros). */
  newBacking: BlockDevice | undefined;
  /** The new backing file is this layer of the old chain: only ranges the layers above it allocate are compared. */
  prefix?: BlockDevice | undefined;
  /** Every write is made durable before it returns (`-t writethrough`). */
  fua?: boolean;
  /** Called after each step that compared contents (qemu-img moves its progress line there). */
  onStep?: () => void;
}

export async function keepGuestContent(opts: KeepContentOptions): Promise<void> {
  const { image, newBacking, prefix } = opts;
  const oldBacking = image.backing;
  const size = image.virtualSize;
  const oldSize = oldBacking?.virtualSize ?? 0;
  const newSize = newBacking?.virtualSize ?? 0;
  const bufOld = new Uint8Array(Math.min(REBASE_CHUNK_BYTES, size));
  const bufNew = new Uint8Array(bufOld.byteLength);
  const writeOpts = opts.fua ? { fua: true } : {};
  let n = 0;
  for (let offset = 0; offset < size; offset += n) {
    n = Math.min(REBASE_CHUNK_BYTES, size - offset);
    const own = await allocationRun(image, offset, n);
    n = own.length;
    if (own.allocated) continue;
    if (prefix !== undefined && oldBacking !== undefined) {
      const above = await allocationRunAbove(oldBacking, prefix, offset, n);
      n = above.length;
      if (!above.allocated) continue;
    }
    const oldIsZero = oldBacking === undefined || offset >= oldSize;
    if (oldIsZero) bufOld.fill(0, 0, n);
    else {
      n = Math.min(n, oldSize - offset);
      await oldBacking.readInto(offset, bufOld.subarray(0, n));
    }
    if (newBacking === undefined || offset >= newSize) bufNew.fill(0, 0, n);
    else {
      n = Math.min(n, newSize - offset);
      await newBacking.readInto(offset, bufNew.subarray(0, n));
    }
    for (let done = 0; done < n; ) {
      const run = sectorRun(bufOld, bufNew, done, n);
      if (run.differs) {
        if (oldIsZero) await image.writeZeroes(offset + done, run.length, writeOpts);
        else await image.write(offset + done, bufOld.slice(done, done + run.length), writeOpts);
      }
      done += run.length;
    }
    opts.onStep?.();
  }
}

/** From `from` up to `end`: how many bytes of 512-byte sectors in a row agree on differing or not. */
function sectorRun(a: Uint8Array, b: Uint8Array, from: number, end: number): { differs: boolean; length: number } {
  const differs = !sameBytes(a, b, from, Math.min(end, from + SECTOR));
  let at = Math.min(end, from + SECTOR);
  while (at < end) {
    const next = Math.min(end, at + SECTOR);
    if (!sameBytes(a, b, at, next) !== differs) break;
    at = next;
  }
  return { differs, length: at - from };
}

function sameBytes(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  return Buffer.from(a.buffer, a.byteOffset + from, to - from).equals(Buffer.from(b.buffer, b.byteOffset + from, to - from));
}
