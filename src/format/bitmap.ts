/**
 * Persistent bitmaps (spec: "Bitmaps").
 *
 * Bitmap directory entry, variable length, 8-byte aligned (padding must be zero):
 *    0 bitmap_table_offset u64   12 flags u32 (bit 0 in_use, 1 auto, 2 extra_data_compatible)
 *    8 bitmap_table_size u32     16 type u8 (1 = dirty tracking)   17 granularity_bits u8
 *   18 name_size u16             20 extra_data_size u32            24 extra_data, name, padding
 *
 * Bitmap table entry, one u64:
 *   bit      0  with offset 0: 1 = cluster reads as all ones, 0 = all zeros (else reserved)
 *   bits  1- 8  reserved (0)
 *   bits  9-55  host cluster offset (0 = unallocated)
 *   bits 56-63  reserved (0)
 */
import { TWO_32, align8, decodeString, encodeString, readU64, requireBytes, view, writeU64 } from './bytes.js';
import { BITMAP_DIR_ENTRY_FIXED, BITMAP_FLAG_AUTO, BITMAP_FLAG_IN_USE, BITMAP_TYPE_DIRTY_TRACKING } from './constants.js';
import {
  MAX_BITMAP_DATA_BYTES,
  MAX_BITMAP_GRANULARITY_BITS,
  MAX_BITMAP_NAME,
  MAX_BITMAP_TABLE_ENTRIES,
  MIN_BITMAP_GRANULARITY_BITS,
} from '../limits.js';

export interface BitmapDirectoryEntry {
  bitmapTableOffset: bigint;
  bitmapTableSize: number;
  flags: number;
  type: number;
  granularityBits: number;
  name: string;
  extraData: Uint8Array;
}

export function bitmapEntrySize(e: Pick<BitmapDirectoryEntry, 'extraData' | 'name'>): number {
  return align8(BITMAP_DIR_ENTRY_FIXED + e.extraData.byteLength + encodeString(e.name).byteLength);
}

/**
 * What QEMU (7.2, check_dir_entry() in block/qcow2-bitmap.c) requires of a bitmap directory entry
 * before it opens an image whose bitmaps are consistent (autoclear bit 0): a nonzero table of at
 * most MAX_BITMAP_TABLE_ENTRIES at a nonzero cluster-aligned offset, granularity_bits within
 * QEMU's range, only the in_use and auto flags, a name of at most 1023 bytes, type 1 (dirty
 * tracking), at most MAX_BITMAP_DATA_BYTES of data, and, unless in use, enough of it for the
 * virtual size. Returns the first rule broken, or undefined.
 */
export function bitmapEntryProblem(e: BitmapDirectoryEntry, clusterSize: number, virtualSize: number): string | undefined {
  if (e.bitmapTableSize === 0) return 'its bitmap table is empty';
  if (e.bitmapTableOffset === 0n || e.bitmapTableOffset % BigInt(clusterSize) !== 0n) {
    return `its bitmap table offset 0x${e.bitmapTableOffset.toString(16)} is not a nonzero cluster-aligned offset`;
  }
  if (e.bitmapTableSize > MAX_BITMAP_TABLE_ENTRIES) return `its bitmap table of ${e.bitmapTableSize} entries exceeds ${MAX_BITMAP_TABLE_ENTRIES}`;
  if (e.granularityBits < MIN_BITMAP_GRANULARITY_BITS || e.granularityBits > MAX_BITMAP_GRANULARITY_BITS) {
    return `granularity_bits ${e.granularityBits} is outside ${MIN_BITMAP_GRANULARITY_BITS} .. ${MAX_BITMAP_GRANULARITY_BITS}`;
  }
  const reserved = e.flags & ~(BITMAP_FLAG_IN_USE | BITMAP_FLAG_AUTO);
  if (reserved !== 0) return `flags 0x${(e.flags >>> 0).toString(16)} set bits QEMU reserves (0x${(reserved >>> 0).toString(16)})`;
  if (encodeString(e.name).byteLength > MAX_BITMAP_NAME) return `its name is longer than ${MAX_BITMAP_NAME} bytes`;
  if (e.type !== BITMAP_TYPE_DIRTY_TRACKING) return `type ${e.type} is not 1 (dirty tracking)`;
  const dataBytes = BigInt(e.bitmapTableSize) * BigInt(clusterSize);
  if (dataBytes > BigInt(MAX_BITMAP_DATA_BYTES)) return `its ${dataBytes} bytes of data exceed ${MAX_BITMAP_DATA_BYTES}`;
  if ((e.flags & BITMAP_FLAG_IN_USE) === 0 && BigInt(virtualSize) > (dataBytes * 8n) << BigInt(e.granularityBits)) {
    return `its table of ${e.bitmapTableSize} clusters is too small for a virtual size of ${virtualSize} at granularity 2^${e.granularityBits}`;
  }
  return undefined;
}

export function decodeBitmapDirectory(
  bytes: Uint8Array,
  count: number,
  fileOffset = 0,
): { entries: BitmapDirectoryEntry[]; size: number } {
  const dv = view(bytes);
  const entries: BitmapDirectoryEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    requireBytes(bytes, at, BITMAP_DIR_ENTRY_FIXED, `bitmap_directory[${i}]`, fileOffset);
    const nameSize = dv.getUint16(at + 18);
    const extraSize = dv.getUint32(at + 20);
    requireBytes(bytes, at + BITMAP_DIR_ENTRY_FIXED, extraSize + nameSize, `bitmap_directory[${i}]`, fileOffset);
    const p = at + BITMAP_DIR_ENTRY_FIXED;
    entries.push({
      bitmapTableOffset: readU64(dv, at),
      bitmapTableSize: dv.getUint32(at + 8),
      flags: dv.getUint32(at + 12),
      type: dv.getUint8(at + 16),
      granularityBits: dv.getUint8(at + 17),
      extraData: bytes.slice(p, p + extraSize),
      name: decodeString(bytes.subarray(p + extraSize, p + extraSize + nameSize)),
    });
    at += align8(BITMAP_DIR_ENTRY_FIXED + extraSize + nameSize);
  }
  return { entries, size: at };
}

export function encodeBitmapDirectory(entries: readonly BitmapDirectoryEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.reduce((n, e) => n + bitmapEntrySize(e), 0));
  const dv = view(bytes);
  let at = 0;
  for (const e of entries) {
    const name = encodeString(e.name);
    writeU64(dv, at, e.bitmapTableOffset);
    dv.setUint32(at + 8, e.bitmapTableSize);
    dv.setUint32(at + 12, e.flags);
    dv.setUint8(at + 16, e.type);
    dv.setUint8(at + 17, e.granularityBits);
    dv.setUint16(at + 18, name.byteLength);
    dv.setUint32(at + 20, e.extraData.byteLength);
    bytes.set(e.extraData, at + BITMAP_DIR_ENTRY_FIXED);
    bytes.set(name, at + BITMAP_DIR_ENTRY_FIXED + e.extraData.byteLength);
    at += bitmapEntrySize(e);
  }
  return bytes;
}

export interface BitmapTableEntry {
  hostOffset: number;
  /** Bit 0: with hostOffset 0, the cluster reads as all ones. */
  allOnes: boolean;
  /** Bits 1-8. */
  reservedLow: number;
  /** Bits 56-63. */
  reservedHigh: number;
}

export const BITMAP_TABLE_ENTRY_SIZE = 8;

export function decodeBitmapTableEntry(dv: DataView, at: number): BitmapTableEntry {
  const hi = dv.getUint32(at);
  const lo = dv.getUint32(at + 4);
  return {
    reservedHigh: hi >>> 24,
    hostOffset: (hi & 0x00ff_ffff) * TWO_32 + ((lo & 0xffff_fe00) >>> 0),
    reservedLow: (lo >>> 1) & 0xff,
    allOnes: (lo & 1) === 1,
  };
}

export function encodeBitmapTableEntry(dv: DataView, at: number, e: BitmapTableEntry): void {
  dv.setUint32(at, (((e.reservedHigh & 0xff) << 24) | Math.floor(e.hostOffset / TWO_32)) >>> 0);
  dv.setUint32(at + 4, ((e.hostOffset % TWO_32) | ((e.reservedLow & 0xff) << 1) | (e.allOnes ? 1 : 0)) >>> 0);
}

export function decodeBitmapTable(bytes: Uint8Array, count: number): BitmapTableEntry[] {
  const dv = view(bytes);
  const out: BitmapTableEntry[] = [];
  for (let i = 0; i < count; i++) out.push(decodeBitmapTableEntry(dv, i * BITMAP_TABLE_ENTRY_SIZE));
  return out;
}

export function encodeBitmapTable(entries: readonly BitmapTableEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * BITMAP_TABLE_ENTRY_SIZE);
  const dv = view(bytes);
  entries.forEach((e, i) => encodeBitmapTableEntry(dv, i * BITMAP_TABLE_ENTRY_SIZE, e));
  return bytes;
}
