/**
 * qemu-img bitmap's operations on the bitmaps kept in memory (dirty-bitmaps.ts): add, remove,
 * clear, enable, disable, merge. Each is checked as QEMU 7.2 checks it, with its message, before
 * it changes anything; the close that follows stores the result.
 */
import type { BitmapEdit, PersistentBitmap } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { encodeString } from '../format/bytes.js';
import { BITMAP_FLAG_AUTO, BITMAP_TYPE_DIRTY_TRACKING } from '../format/constants.js';
import { MAX_BITMAPS, MAX_BITMAP_GRANULARITY_BITS, MAX_BITMAP_NAME, MAX_TRACKED_BITMAP_BYTES, MIN_BITMAP_GRANULARITY_BITS } from '../limits.js';
import { bitmapBytes, inconsistentBitmap, markGranules } from './dirty-bitmaps.js';
import type { Qcow2State, TrackedBitmap, TrackedBitmaps } from './state.js';

/** QEMU's default granularity for a new bitmap: the cluster size, at least 4 KiB. */
export function defaultGranularity(clusterSize: number): number {
  return Math.max(4096, clusterSize);
}

export async function applyBitmapEdit(st: Qcow2State, tracked: TrackedBitmaps, edit: BitmapEdit): Promise<void> {
  const b = tracked.list.find((x) => x.entry.name === edit.name);
  if (edit.op === 'add') addBitmap(st, tracked, edit);
  else if (!b) throw usage(`Dirty bitmap '${edit.name}' not found`);
  else if (edit.op === 'remove') {
    tracked.list = tracked.list.filter((x) => x !== b);
    tracked.removed.push(...b.owned);
    tracked.listChanged = true;
  } else {
    const bits = b.bits;
    if (!bits) throw inconsistentBitmap(edit.name);
    if (edit.op === 'clear') bits.fill(0);
    else if (edit.op === 'enable') b.entry = { ...b.entry, flags: b.entry.flags | BITMAP_FLAG_AUTO };
    else if (edit.op === 'disable') b.entry = { ...b.entry, flags: b.entry.flags & ~BITMAP_FLAG_AUTO };
    else if (edit.op === 'merge') await mergeInto(st, b, bits, edit.source, edit.sourceSize);
    b.changed = true;
  }
  st.activeBitmaps = tracked.list.some((x) => x.bits !== undefined && (x.entry.flags & BITMAP_FLAG_AUTO) !== 0);
}

function addBitmap(st: Qcow2State, tracked: TrackedBitmaps, edit: Extract<BitmapEdit, { op: 'add' }>): void {
  const nameBytes = encodeString(edit.name).byteLength;
  if (nameBytes === 0 || nameBytes > MAX_BITMAP_NAME) throw usage(`Bitmap name '${edit.name}' must be 1 to ${MAX_BITMAP_NAME} bytes long`);
  const granularity = edit.granularity ?? defaultGranularity(st.geometry.clusterSize);
  const bitsLog = Math.log2(granularity);
  if (!Number.isInteger(bitsLog) || bitsLog < MIN_BITMAP_GRANULARITY_BITS || bitsLog > MAX_BITMAP_GRANULARITY_BITS) {
    throw usage('Granularity must be power of 2 and at least 512');
  }
  // QEMU's order: granularity, then whether the image can store it, then the name.
  if (st.header.version < 3) throw unsupported(`Can't make bitmap '${edit.name}' persistent: Cannot store dirty bitmaps in qcow2 v2 files`);
  if (tracked.list.some((b) => b.entry.name === edit.name)) throw usage(`Bitmap already exists: ${edit.name}`);
  if (tracked.list.length >= MAX_BITMAPS) throw unsupported(`Can't make bitmap '${edit.name}' persistent: the image has the most bitmaps QEMU supports (${MAX_BITMAPS})`);
  const bytes = bitmapBytes(st.geometry.virtualSize, bitsLog);
  const total = tracked.list.reduce((n, b) => n + (b.bits?.byteLength ?? 0), bytes);
  if (total > MAX_TRACKED_BITMAP_BYTES) throw unsupported(`the image's bitmaps would need more than ${MAX_TRACKED_BITMAP_BYTES / 2 ** 20} MiB of memory`);
  const b: TrackedBitmap = {
    entry: {
      bitmapTableOffset: 0n,
      bitmapTableSize: 0,
      flags: edit.disabled ? 0 : BITMAP_FLAG_AUTO,
      type: BITMAP_TYPE_DIRTY_TRACKING,
      granularityBits: bitsLog,
      name: edit.name,
      extraData: new Uint8Array(0),
    },
    bits: new Uint8Array(bytes),
    changed: true,
    owned: [],
  };
  tracked.list.push(b);
  tracked.listChanged = true;
}

/** Every granule of `source` that is dirty marks the granules of the bitmap it covers. */
async function mergeInto(st: Qcow2State, b: TrackedBitmap, bits: Uint8Array, source: PersistentBitmap, sourceSize: number): Promise<void> {
  const size = st.geometry.virtualSize;
  if (sourceSize !== size) {
    throw usage(`Bitmaps are of different sizes (destination size is ${size}, source size is ${sourceSize}) and can't be merged`);
  }
  let at = 0;
  while (at < size) {
    const runs = await source.runs(at, size - at, 4096);
    if (runs.length === 0) break;
    for (const r of runs) {
      if (r.dirty) markGranules(bits, b.entry.granularityBits, at, r.length);
      at += r.length;
    }
  }
}
