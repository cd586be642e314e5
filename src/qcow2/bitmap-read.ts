/**
 * Reading one persistent bitmap (spec: "Bitmaps", "Bitmap table", "Bitmap data"), for export as
 * NBD's qemu:dirty-bitmap:NAME. Bit i (least significant first) of byte j of the bitmap data
 * covers guest bytes [(8j + i) × granularity, (8j + i + 1) × granularity). The bitmap table maps
 * each cluster of bitmap data to a host cluster, or says it reads as all zeros or all ones.
 *
 * Opening checks everything the spec and QEMU's reader require before any bit is trusted: the
 * bitmaps are consistent (autoclear bit 0), the bitmap is not `in_use` (saved incompletely), it is
 * a dirty-tracking bitmap with QEMU's granularities, unknown extra data is marked compatible, the
 * table is as long as the disk needs and every entry is a clean, aligned, in-file offset. Data
 * clusters are then read on demand, a bounded number kept. A bitmap this device keeps through its
 * writes (dirty-bitmaps.ts) is read from memory: its live bits.
 */
import type { DirtyRun, PersistentBitmap } from '../engine/types.js';
import { corrupt, hex, unsupported, usage } from '../errors.js';
import { decodeBitmapDirectory, decodeBitmapTable, type BitmapDirectoryEntry, type BitmapTableEntry } from '../format/bitmap.js';
import { BITMAP_FLAG_AUTO, BITMAP_FLAG_EXTRA_DATA_COMPATIBLE, BITMAP_FLAG_IN_USE, BITMAP_TYPE_DIRTY_TRACKING } from '../format/constants.js';
import { BITMAP_DATA_CACHE_CLUSTERS, MAX_BITMAP_GRANULARITY_BITS, MAX_BITMAP_TABLE_BYTES, MIN_BITMAP_GRANULARITY_BITS } from '../limits.js';
import type { ImageMetadata } from '../image/metadata.js';
import type { BlockFile } from '../io/block-file.js';
import type { Qcow2State } from './state.js';

export async function readPersistentBitmap(st: Qcow2State, name: string): Promise<PersistentBitmap> {
  const entries = await bitmapDirectory(st, name);
  const e = entries.find((b) => b.name === name);
  if (!e) throw usage(`bitmap '${name}' not found (the image has ${entries.map((b) => `'${b.name}'`).join(', ')})`);
  const tracked = st.bitmaps?.list.find((b) => b.entry.name === name);
  if (tracked?.bits) {
    // Kept in memory through this device's writes (dirty-bitmaps.ts): the live bits.
    const bits = tracked.bits;
    const C = st.geometry.clusterSize;
    return new BitmapView(name, 2 ** e.granularityBits, (e.flags & BITMAP_FLAG_AUTO) !== 0, st.geometry.virtualSize, C, async (index) => bits.subarray(index * C, (index + 1) * C));
  }
  const { granularity, table } = await checkedBitmapTable(st, e);
  const cache = new Map<number, Uint8Array>();
  return new BitmapView(name, granularity, (e.flags & BITMAP_FLAG_AUTO) !== 0, st.geometry.virtualSize, st.geometry.clusterSize, async (index) => {
    const t = table[index];
    if (!t || t.hostOffset === 0) return t?.allOnes ?? false;
    const cached = cache.get(index);
    if (cached) return cached;
    const data = await st.file.read(t.hostOffset, st.geometry.clusterSize);
    if (cache.size >= BITMAP_DATA_CACHE_CLUSTERS) cache.delete(cache.keys().next().value as number);
    cache.set(index, data);
    return data;
  });
}

/** The bitmap directory's entries, refused when the image has no consistent bitmaps. */
export async function bitmapDirectory(st: Qcow2State, name: string): Promise<BitmapDirectoryEntry[]> {
  const ext = st.extensions.find((e) => e.kind === 'bitmaps');
  if (!ext || ext.kind !== 'bitmaps') throw usage(`bitmap '${name}' not found: the image has no persistent bitmaps`);
  if (!st.features.bitmapsConsistent) {
    throw unsupported(`bitmap '${name}' cannot be used: the image's bitmaps are stale (autoclear bit 0 is clear: written by a program that does not keep them)`);
  }
  const dirOffset = Number(ext.directoryOffset);
  return decodeBitmapDirectory(await st.file.read(dirOffset, Number(ext.directorySize)), ext.nbBitmaps, dirOffset).entries;
}

/**
 * A bitmap's table, after every check the spec and QEMU's reader make before its bits are
 * trusted (module comment); refuses a bitmap that is in_use.
 */
export async function checkedBitmapTable(st: Qcow2State, e: BitmapDirectoryEntry): Promise<{ granularity: number; table: BitmapTableEntry[] }> {
  const field = `bitmap '${e.name}'`;
  if (e.flags & BITMAP_FLAG_IN_USE) throw unsupported(`${field} is inconsistent (in_use: it was not saved completely) and cannot be used`, { field });
  if (e.type !== BITMAP_TYPE_DIRTY_TRACKING) throw unsupported(`${field} has type ${e.type}; only dirty tracking bitmaps (1) can be used`, { field });
  if (e.granularityBits < MIN_BITMAP_GRANULARITY_BITS || e.granularityBits > MAX_BITMAP_GRANULARITY_BITS) {
    throw unsupported(`${field} has granularity_bits ${e.granularityBits} (supported: ${MIN_BITMAP_GRANULARITY_BITS} to ${MAX_BITMAP_GRANULARITY_BITS})`, { field });
  }
  if (e.extraData.byteLength > 0 && !(e.flags & BITMAP_FLAG_EXTRA_DATA_COMPATIBLE)) {
    throw unsupported(`${field} has extra data not marked compatible: it must not be used`, { field });
  }
  const C = st.geometry.clusterSize;
  const granularity = 2 ** e.granularityBits;
  const size = st.geometry.virtualSize;
  const needed = bitmapTableEntries(size, granularity, C);
  if (e.bitmapTableSize !== needed) {
    throw corrupt(`${field}: bitmap table of ${e.bitmapTableSize} entries, but a disk of ${size} bytes at granularity ${granularity} needs ${needed}`, { field });
  }
  const tableOffset = Number(e.bitmapTableOffset);
  const tableBytes = needed * 8;
  if (tableBytes > MAX_BITMAP_TABLE_BYTES) throw unsupported(`${field}: bitmap table of ${tableBytes} bytes exceeds the ${MAX_BITMAP_TABLE_BYTES / 2 ** 20} MiB limit`, { field });
  const fileSize = await st.file.size();
  if (needed > 0 && (tableOffset === 0 || tableOffset % C !== 0 || tableOffset + tableBytes > fileSize)) {
    throw corrupt(`${field}: bitmap table at ${hex(tableOffset)} is not a cluster-aligned offset inside the file`, { field, offset: tableOffset });
  }
  const table = needed === 0 ? [] : decodeBitmapTable(await st.file.read(tableOffset, tableBytes), needed);
  table.forEach((t, i) => checkEntry(t, i, tableOffset, C, fileSize, field));
  return { granularity, table };
}

/**
 * As QEMU's open (qcow2_load_dirty_bitmaps, read-only opens too): while the bitmaps are consistent,
 * the table of every bitmap not in use is read and its entries checked (check_table_entry), and a
 * bad entry refuses the image. QEMU reads what lies past the end of the file as zeros, so a table
 * there is not refused here (using its bits is: checkedBitmapTable).
 */
export async function checkBitmapTables(file: Pick<BlockFile, 'read' | 'size'>, meta: ImageMetadata): Promise<void> {
  if (!meta.layout.features.bitmapsConsistent) return;
  const C = meta.layout.geometry.clusterSize;
  const fileSize = await file.size();
  for (const e of meta.bitmaps) {
    if (e.flags & BITMAP_FLAG_IN_USE) continue;
    const tableOffset = Number(e.bitmapTableOffset);
    const tableBytes = e.bitmapTableSize * 8;
    if (tableBytes > MAX_BITMAP_TABLE_BYTES) continue; // refused when the bitmap is used
    const bytes = new Uint8Array(tableBytes);
    const inFile = Math.max(0, Math.min(tableBytes, fileSize - tableOffset));
    if (inFile > 0) bytes.set(await file.read(tableOffset, inFile));
    decodeBitmapTable(bytes, e.bitmapTableSize).forEach((t, i) => checkEntryBits(t, i, tableOffset, C, `bitmap '${e.name}'`));
  }
}

/** Entries of the bitmap table of a disk of `size` bytes: one per cluster of bitmap data. */
export function bitmapTableEntries(size: number, granularity: number, clusterSize: number): number {
  return Math.ceil(Math.ceil(size / granularity) / (clusterSize * 8));
}

/** QEMU's rules for one bitmap table entry: no reserved bits (bit 0 too when there is an offset), a cluster-aligned offset. */
function checkEntryBits(t: BitmapTableEntry, i: number, tableOffset: number, C: number, field: string): void {
  const offset = tableOffset + i * 8;
  if (t.reservedHigh !== 0 || t.reservedLow !== 0 || (t.allOnes && t.hostOffset !== 0)) {
    throw corrupt(`${field}: bitmap table entry ${i} has reserved bits set`, { field, offset });
  }
  if (t.hostOffset % C !== 0) throw corrupt(`${field}: bitmap table entry ${i} points to ${hex(t.hostOffset)}, not a cluster boundary`, { field, offset });
}

function checkEntry(t: BitmapTableEntry, i: number, tableOffset: number, C: number, fileSize: number, field: string): void {
  const offset = tableOffset + i * 8;
  checkEntryBits(t, i, tableOffset, C, field);
  if (t.hostOffset !== 0 && t.hostOffset + C > fileSize) {
    throw corrupt(`${field}: bitmap table entry ${i} points to ${hex(t.hostOffset)}, not a cluster inside the file`, { field, offset });
  }
}

/**
 * One cluster of bitmap data, by table index: its bytes, or true/false when it reads as all ones /
 * all zeros.
 */
type DataCluster = (index: number) => Promise<Uint8Array | boolean>;

class BitmapView implements PersistentBitmap {
  private readonly bitsPerCluster: number;

  constructor(
    readonly name: string,
    readonly granularity: number,
    readonly enabled: boolean,
    private readonly size: number,
    clusterSize: number,
    private readonly cluster: DataCluster,
  ) {
    this.bitsPerCluster = clusterSize * 8;
  }

  async runs(offset: number, length: number, maxRuns: number): Promise<DirtyRun[]> {
    const end = Math.min(this.size, offset + length);
    const out: DirtyRun[] = [];
    const push = (from: number, to: number, dirty: boolean): boolean => {
      const last = out[out.length - 1];
      if (last && last.dirty === dirty) last.length += to - from;
      else if (out.length === maxRuns) return false;
      else out.push({ length: to - from, dirty });
      return true;
    };
    const g = this.granularity;
    let at = offset;
    while (at < end) {
      const bit = Math.floor(at / g);
      const index = Math.floor(bit / this.bitsPerCluster);
      const clusterEnd = Math.min(end, (index + 1) * this.bitsPerCluster * g);
      const data = await this.cluster(index);
      if (typeof data === 'boolean') {
        if (!push(at, clusterEnd, data)) break;
        at = clusterEnd;
        continue;
      }
      const first = bit - index * this.bitsPerCluster;
      let full = true;
      for (let b = first; at < clusterEnd; b++) {
        const byte = data[b >>> 3] ?? 0;
        // A whole byte of equal bits, starting on a byte boundary: one step for 8 bits.
        if ((b & 7) === 0 && (byte === 0 || byte === 0xff)) {
          const to = Math.min(clusterEnd, (index * this.bitsPerCluster + b + 8) * g);
          if (!push(at, to, byte === 0xff)) { full = false; break; }
          at = to;
          b += 7;
          continue;
        }
        const to = Math.min(clusterEnd, (index * this.bitsPerCluster + b + 1) * g);
        if (!push(at, to, ((byte >>> (b & 7)) & 1) === 1)) { full = false; break; }
        at = to;
      }
      if (!full) break;
    }
    return out;
  }
}
