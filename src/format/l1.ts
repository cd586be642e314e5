/**
 * L1 table entries (spec: "Cluster mapping"), one u64 each:
 *
 *   bits  0- 8  reserved (0)
 *   bits  9-55  L2 table offset (cluster aligned; 0 = unallocated)
 *   bits 56-62  reserved (0)
 *   bit     63  COPIED: the L2 table's refcount is exactly 1
 *
 * The offset keeps bits 9-55 only, so it is an exact JS number (at most 47 significant bits).
 */
import { TWO_32, view } from './bytes.js';

export interface L1Entry {
  l2Offset: number;
  copied: boolean;
  /** Bits 0-8. */
  reservedLow: number;
  /** Bits 56-62. */
  reservedHigh: number;
}

export const L1_ENTRY_SIZE = 8;

export function decodeL1Entry(dv: DataView, at: number): L1Entry {
  const hi = dv.getUint32(at);
  const lo = dv.getUint32(at + 4);
  return {
    copied: hi >>> 31 === 1,
    reservedHigh: (hi >>> 24) & 0x7f,
    l2Offset: (hi & 0x00ff_ffff) * TWO_32 + ((lo & 0xffff_fe00) >>> 0),
    reservedLow: lo & 0x1ff,
  };
}

export function encodeL1Entry(dv: DataView, at: number, e: L1Entry): void {
  const hi = ((e.copied ? 0x8000_0000 : 0) | ((e.reservedHigh & 0x7f) << 24) | Math.floor(e.l2Offset / TWO_32)) >>> 0;
  const lo = ((e.l2Offset % TWO_32) | (e.reservedLow & 0x1ff)) >>> 0;
  dv.setUint32(at, hi);
  dv.setUint32(at + 4, lo);
}

export function decodeL1Table(bytes: Uint8Array, count: number): L1Entry[] {
  const dv = view(bytes);
  const entries: L1Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(decodeL1Entry(dv, i * L1_ENTRY_SIZE));
  return entries;
}

export function encodeL1Table(entries: readonly L1Entry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * L1_ENTRY_SIZE);
  const dv = view(bytes);
  entries.forEach((e, i) => encodeL1Entry(dv, i * L1_ENTRY_SIZE, e));
  return bytes;
}
