/**
 * Persistent dirty bitmaps kept through our changes, as QEMU keeps them (spec: "Bitmaps"):
 *
 *  1. Before the first change to an image whose bitmaps are consistent (autoclear bit 0), every
 *     bitmap is loaded into memory and marked in_use on disk (the directory rewritten in place,
 *     durably, before the change lands). A bitmap that breaks a rule refuses the change.
 *  2. Guest writes, zero writes, compressed writes and discards set, in memory, the bits of every
 *     enabled ('auto') bitmap for the granules they touch.
 *  3. A clean close stores each changed bitmap afresh: new data clusters (none for all-zero ones)
 *     and a new table, then a new directory with in_use clear, then the header names it (the
 *     header write is ordered after all of them), then the old tables, data and directory are
 *     freed. Unchanged bitmaps keep their clusters; when none changed, the directory is rewritten
 *     in place with in_use clear.
 *
 * A crash before the header write leaves the bitmaps in_use: they are then reported inconsistent
 * (QEMU and bitmap-read.ts refuse their bits) and what was written meanwhile leaks. A bitmap that
 * was in_use when loaded is kept as it is, clusters untouched, still in_use.
 */
import { type Qcow2Error, unsupported, usage } from '../errors.js';
import { decodeBitmapDirectory, decodeBitmapTable, encodeBitmapDirectory, encodeBitmapTable, type BitmapDirectoryEntry, type BitmapTableEntry } from '../format/bitmap.js';
import { AUTOCLEAR_BITMAPS, BITMAP_FLAG_AUTO, BITMAP_FLAG_IN_USE } from '../format/constants.js';
import { MAX_BITMAP_TABLE_BYTES, MAX_TRACKED_BITMAP_BYTES } from '../limits.js';
import { bitmapTableEntries, checkedBitmapTable } from './bitmap-read.js';
import { writeHeader } from './header.js';
import { adjustRange, allocateClusters } from './refcounts.js';
import type { Qcow2State, TrackedBitmap, TrackedBitmaps } from './state.js';

function bitmapsExtension(st: Qcow2State) {
  const ext = st.extensions.find((e) => e.kind === 'bitmaps');
  return ext?.kind === 'bitmaps' ? ext : undefined;
}

/** Bytes of bitmap data for the disk at this granularity. */
export function bitmapBytes(virtualSize: number, granularityBits: number): number {
  return Math.ceil(Math.ceil(virtualSize / 2 ** granularityBits) / 8);
}

/**
 * Loads every bitmap into memory (st.bitmaps), once; undefined when the image has no consistent
 * bitmaps. Refuses (typed) a bitmap whose bits cannot be trusted, or more bitmap data than the
 * limit; nothing is written.
 */
export async function loadBitmaps(st: Qcow2State): Promise<TrackedBitmaps | undefined> {
  if (st.bitmaps) return st.bitmaps;
  const ext = bitmapsExtension(st);
  if (!ext || !st.features.bitmapsConsistent) return undefined;
  const C = st.geometry.clusterSize;
  const dirOffset = Number(ext.directoryOffset);
  const { entries } = decodeBitmapDirectory(await st.file.read(dirOffset, Number(ext.directorySize)), ext.nbBitmaps, dirOffset);
  const list: TrackedBitmap[] = [];
  let total = 0;
  for (const entry of entries) {
    if (entry.flags & BITMAP_FLAG_IN_USE) {
      list.push({ entry, bits: undefined, changed: false, owned: await ownedByInconsistent(st, entry) });
      continue;
    }
    const { table } = await checkedBitmapTable(st, entry);
    const bytes = bitmapBytes(st.geometry.virtualSize, entry.granularityBits);
    total += bytes;
    if (total > MAX_TRACKED_BITMAP_BYTES) {
      throw unsupported(`the image's bitmaps need more than ${MAX_TRACKED_BITMAP_BYTES / 2 ** 20} MiB of memory to be kept up to date`, { field: `bitmap '${entry.name}'` });
    }
    const bits = new Uint8Array(bytes);
    const owned = [{ offset: Number(entry.bitmapTableOffset), length: entry.bitmapTableSize * 8 }];
    for (const [i, t] of table.entries()) {
      const from = i * C;
      const to = Math.min(bytes, from + C);
      if (t.hostOffset !== 0) {
        bits.set((await st.file.read(t.hostOffset, C)).subarray(0, to - from), from);
        owned.push({ offset: t.hostOffset, length: C });
      } else if (t.allOnes) bits.fill(0xff, from, to);
    }
    list.push({ entry, bits, changed: false, owned });
  }
  st.bitmaps = { list, inUse: false, listChanged: false, removed: [] };
  return st.bitmaps;
}

/**
 * What a bitmap that is in_use owns (freed if it is removed): its table and the clusters it names,
 * as far as they are clean cluster offsets inside the file; its bits are never trusted.
 */
async function ownedByInconsistent(st: Qcow2State, entry: BitmapDirectoryEntry): Promise<{ offset: number; length: number }[]> {
  const C = st.geometry.clusterSize;
  const offset = Number(entry.bitmapTableOffset);
  const length = entry.bitmapTableSize * 8;
  const fileSize = await st.file.size();
  if (offset === 0 || offset % C !== 0 || offset + length > fileSize || length > MAX_BITMAP_TABLE_BYTES) return [];
  const owned = [{ offset, length }];
  for (const t of decodeBitmapTable(await st.file.read(offset, length), entry.bitmapTableSize)) {
    if (t.hostOffset !== 0 && t.hostOffset % C === 0 && t.hostOffset + C <= fileSize) owned.push({ offset: t.hostOffset, length: C });
  }
  return owned;
}

/** QEMU's refusal to use a bitmap that is in_use (inconsistent): only removing it is allowed. */
export function inconsistentBitmap(name: string): Qcow2Error {
  return usage(`Bitmap '${name}' is inconsistent and cannot be used (only removed: qcow2 bitmap --remove IMAGE ${name})`);
}

/** Step 1: before the first change, every loaded bitmap is marked in_use on disk (in place). */
export async function markBitmapsInUse(st: Qcow2State, tracked: TrackedBitmaps): Promise<void> {
  if (tracked.inUse) return;
  const ext = bitmapsExtension(st);
  if (!ext) return;
  const entries = tracked.list.map((b) => ({ ...b.entry, flags: b.entry.flags | BITMAP_FLAG_IN_USE }));
  await st.store.writeThrough(Number(ext.directoryOffset), encodeBitmapDirectory(entries), 'bitmap');
  tracked.inUse = true;
}

/** Step 2: the granules of [offset, offset + length) become dirty in every enabled bitmap. */
export function markDirty(tracked: TrackedBitmaps, offset: number, length: number): void {
  if (length <= 0) return;
  for (const b of tracked.list) {
    if (!b.bits || !(b.entry.flags & BITMAP_FLAG_AUTO)) continue;
    markGranules(b.bits, b.entry.granularityBits, offset, length);
    b.changed = true;
  }
}

/** Sets the bits of the granules (2^granularityBits bytes each) that [offset, offset + length) touches. */
export function markGranules(bits: Uint8Array, granularityBits: number, offset: number, length: number): void {
  if (length <= 0) return;
  setBits(bits, Math.floor(offset / 2 ** granularityBits), Math.floor((offset + length - 1) / 2 ** granularityBits));
}

/** Sets bits first..last (inclusive, least significant bit of each byte first). */
export function setBits(bits: Uint8Array, first: number, last: number): void {
  let bit = first;
  while (bit <= last && (bit & 7) !== 0) {
    bits[bit >>> 3]! |= 1 << (bit & 7);
    bit++;
  }
  const wholeBytes = Math.floor((last + 1 - bit) / 8);
  if (wholeBytes > 0) {
    bits.fill(0xff, bit >>> 3, (bit >>> 3) + wholeBytes);
    bit += wholeBytes * 8;
  }
  for (; bit <= last; bit++) bits[bit >>> 3]! |= 1 << (bit & 7);
}

/** As QEMU, a disk whose bitmaps include an inconsistent one is not resized. */
export function checkResizable(tracked: TrackedBitmaps): void {
  const bad = tracked.list.find((b) => !b.bits);
  if (bad) throw inconsistentBitmap(bad.entry.name);
}

/** The disk's size changes: every kept bitmap follows (new granules clean, cut ones dropped). */
export function resizeBitmaps(tracked: TrackedBitmaps, newSize: number): void {
  for (const b of tracked.list) {
    if (!b.bits) continue;
    const g = b.entry.granularityBits;
    const bits = new Uint8Array(bitmapBytes(newSize, g));
    bits.set(b.bits.subarray(0, bits.byteLength));
    const granules = Math.ceil(newSize / 2 ** g);
    // Bits of the last byte past the new end are clear.
    if (granules % 8 !== 0 && bits.byteLength > 0) bits[bits.byteLength - 1]! &= (1 << granules % 8) - 1;
    b.bits = bits;
    b.changed = true;
  }
}

/** Step 3: a clean close stores the bitmaps (module comment) and clears in_use. */
export async function storeBitmaps(st: Qcow2State, tracked: TrackedBitmaps): Promise<void> {
  if (!tracked.inUse) return;
  const ext = bitmapsExtension(st);
  const C = st.geometry.clusterSize;
  const freed = [...tracked.removed];
  let rewritten = false;
  const entries: BitmapDirectoryEntry[] = [];
  for (const b of tracked.list) {
    if (!b.bits) {
      entries.push(b.entry);
      continue;
    }
    if (!b.changed) {
      entries.push({ ...b.entry, flags: b.entry.flags & ~BITMAP_FLAG_IN_USE });
      continue;
    }
    const table = await writeBitmapData(st, b.bits, b.entry.granularityBits);
    const tableBytes = encodeBitmapTable(table);
    const tableOffset = await allocateClusters(st, Math.max(1, Math.ceil(tableBytes.byteLength / C)));
    await st.file.write(tableOffset, tableBytes, 'bitmap');
    freed.push(...b.owned);
    rewritten = true;
    b.owned = [{ offset: tableOffset, length: tableBytes.byteLength }, ...table.filter((t) => t.hostOffset !== 0).map((t) => ({ offset: t.hostOffset, length: C }))];
    b.entry = { ...b.entry, flags: b.entry.flags & ~BITMAP_FLAG_IN_USE, bitmapTableOffset: BigInt(tableOffset), bitmapTableSize: table.length };
    b.changed = false;
    entries.push(b.entry);
  }
  const directory = encodeBitmapDirectory(entries);
  const inPlace = ext !== undefined && entries.length > 0 && !rewritten && !tracked.listChanged;
  // The old directory is freed unless it is rewritten in place.
  if (ext && !inPlace) freed.push({ offset: Number(ext.directoryOffset), length: Number(ext.directorySize) });
  if (entries.length === 0) {
    // No bitmap left: the extension goes, autoclear bit 0 with it.
    st.extensions = st.extensions.filter((e) => e !== ext);
    st.header.autoclearFeatures &= ~AUTOCLEAR_BITMAPS;
    await writeHeader(st);
  } else if (inPlace && ext) {
    // Only in_use changes: the directory is rewritten in place (its clusters stay).
    await st.store.writeThrough(Number(ext.directoryOffset), directory, 'bitmap');
  } else {
    const dirOffset = await allocateClusters(st, Math.ceil(directory.byteLength / C));
    await st.file.write(dirOffset, directory, 'bitmap');
    const fresh = { kind: 'bitmaps' as const, nbBitmaps: entries.length, reserved: 0, directorySize: BigInt(directory.byteLength), directoryOffset: BigInt(dirOffset) };
    st.extensions = ext ? st.extensions.map((e) => (e === ext ? fresh : e)) : [...st.extensions, fresh];
    st.header.autoclearFeatures |= AUTOCLEAR_BITMAPS;
    st.features.bitmapsConsistent = true;
    // A write-through: everything above is durable before the header names it.
    await writeHeader(st);
  }
  for (const r of freed) if (r.length > 0) await adjustRange(st, r.offset, r.length, -1);
  tracked.inUse = false;
  tracked.listChanged = false;
  tracked.removed = [];
}

/** Writes a bitmap's data clusters (none for an all-zero one) and returns its table. */
async function writeBitmapData(st: Qcow2State, bits: Uint8Array, granularityBits: number): Promise<BitmapTableEntry[]> {
  const C = st.geometry.clusterSize;
  const table: BitmapTableEntry[] = [];
  const count = bitmapTableEntries(st.geometry.virtualSize, 2 ** granularityBits, C);
  for (let i = 0; i < count; i++) {
    const chunk = bits.subarray(i * C, (i + 1) * C);
    if (chunk.every((b) => b === 0)) {
      table.push({ hostOffset: 0, allOnes: false, reservedLow: 0, reservedHigh: 0 });
      continue;
    }
    const data = new Uint8Array(C);
    data.set(chunk);
    const hostOffset = await allocateClusters(st, 1);
    await st.file.write(hostOffset, data, 'bitmap');
    table.push({ hostOffset, allOnes: false, reservedLow: 0, reservedHigh: 0 });
  }
  return table;
}
