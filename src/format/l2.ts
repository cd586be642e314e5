/**
 * L2 table entries (spec: "Cluster mapping", "Extended L2 Entries").
 *
 * Standard entry, one u64:
 *   bit     63  COPIED: refcount exactly 1 (for external data files: every allocated cluster)
 *   bit     62  compressed (then bits 0-61 are a compressed descriptor, see compressed.ts)
 *   bits  0-61  standard cluster descriptor:
 *                 bit 0      reads as zero (v3 without extended L2 only)
 *                 bits 1-8   reserved (0)
 *                 bits 9-55  host cluster offset (0 with COPIED clear = unallocated)
 *                 bits 56-61 reserved (0)
 *
 * Extended entry: the standard u64 followed by a u64 subcluster bitmap whose bits 0-31 say
 * "subcluster x allocated" and bits 32-63 "subcluster x reads as zero" (so on disk the zero mask
 * comes first). Compressed clusters have no subclusters: the bitmap is reserved (0).
 */
import { TWO_32, view } from './bytes.js';

export interface L2Entry {
  copied: boolean;
  compressed: boolean;
  /** Bits 32-61 of the descriptor (30 bits). */
  descriptorHi: number;
  /** Bits 0-31 of the descriptor. */
  descriptorLo: number;
  /** Extended L2 only: bits 0-31 of the second word. */
  allocBitmap: number;
  /** Extended L2 only: bits 32-63 of the second word. */
  zeroBitmap: number;
}

/** The standard-cluster reading of a descriptor. */
export interface StandardDescriptor {
  zero: boolean;
  hostOffset: number;
  /** Bits 1-8. */
  reservedLow: number;
  /** Bits 56-61. */
  reservedHigh: number;
}

export function l2EntrySize(extendedL2: boolean): number {
  return extendedL2 ? 16 : 8;
}

export function decodeL2Entry(dv: DataView, at: number, extendedL2: boolean): L2Entry {
  const hi = dv.getUint32(at);
  return {
    copied: hi >>> 31 === 1,
    compressed: ((hi >>> 30) & 1) === 1,
    descriptorHi: hi & 0x3fff_ffff,
    descriptorLo: dv.getUint32(at + 4),
    zeroBitmap: extendedL2 ? dv.getUint32(at + 8) : 0,
    allocBitmap: extendedL2 ? dv.getUint32(at + 12) : 0,
  };
}

export function encodeL2Entry(dv: DataView, at: number, e: L2Entry, extendedL2: boolean): void {
  const hi = ((e.copied ? 0x8000_0000 : 0) | (e.compressed ? 0x4000_0000 : 0) | (e.descriptorHi & 0x3fff_ffff)) >>> 0;
  dv.setUint32(at, hi);
  dv.setUint32(at + 4, e.descriptorLo >>> 0);
  if (extendedL2) {
    dv.setUint32(at + 8, e.zeroBitmap >>> 0);
    dv.setUint32(at + 12, e.allocBitmap >>> 0);
  }
}

export function decodeStandardDescriptor(e: Pick<L2Entry, 'descriptorHi' | 'descriptorLo'>): StandardDescriptor {
  return {
    zero: (e.descriptorLo & 1) === 1,
    reservedLow: (e.descriptorLo >>> 1) & 0xff,
    hostOffset: (e.descriptorHi & 0x00ff_ffff) * TWO_32 + ((e.descriptorLo & 0xffff_fe00) >>> 0),
    reservedHigh: (e.descriptorHi >>> 24) & 0x3f,
  };
}

export function encodeStandardDescriptor(d: StandardDescriptor): { descriptorHi: number; descriptorLo: number } {
  return {
    descriptorHi: (((d.reservedHigh & 0x3f) << 24) | Math.floor(d.hostOffset / TWO_32)) >>> 0,
    descriptorLo: ((d.hostOffset % TWO_32) | ((d.reservedLow & 0xff) << 1) | (d.zero ? 1 : 0)) >>> 0,
  };
}

export function decodeL2Table(bytes: Uint8Array, count: number, extendedL2: boolean): L2Entry[] {
  const dv = view(bytes);
  const size = l2EntrySize(extendedL2);
  const entries: L2Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(decodeL2Entry(dv, i * size, extendedL2));
  return entries;
}

export function encodeL2Table(entries: readonly L2Entry[], extendedL2: boolean): Uint8Array {
  const size = l2EntrySize(extendedL2);
  const bytes = new Uint8Array(entries.length * size);
  const dv = view(bytes);
  entries.forEach((e, i) => encodeL2Entry(dv, i * size, e, extendedL2));
  return bytes;
}
