/**
 * How the checker reads one L2 entry, as QEMU classifies it (qcow2_get_cluster_type): compressed,
 * preallocated zero, plain zero, unallocated or normal. With extended L2 entries bit 0 is not a zero
 * flag; with an external data file, offset 0 with COPIED set is an allocated cluster.
 */
import { decodeCompressedDescriptor } from '../format/compressed.js';
import { decodeL2Entry, decodeStandardDescriptor, type L2Entry } from '../format/l2.js';

export type ClusterType = 'compressed' | 'zero-alloc' | 'zero-plain' | 'unallocated' | 'normal';

export interface CheckedL2Entry {
  raw: L2Entry;
  type: ClusterType;
  /** Host offset of a standard entry (bits 9-55). */
  hostOffset: number;
  /** Bits 1-8 or 56-61 of a standard entry are set. */
  reservedBits: boolean;
  /** The entry's second word (extended L2), zero otherwise. */
  hasBitmap: boolean;
}

export function classifyL2Entry(dv: DataView, at: number, extendedL2: boolean, dataFile: boolean): CheckedL2Entry {
  const raw = decodeL2Entry(dv, at, extendedL2);
  const d = decodeStandardDescriptor(raw);
  const hasBitmap = raw.allocBitmap !== 0 || raw.zeroBitmap !== 0;
  let type: ClusterType;
  if (raw.compressed) type = 'compressed';
  else if (d.zero && !extendedL2) type = d.hostOffset !== 0 ? 'zero-alloc' : 'zero-plain';
  else if (d.hostOffset === 0) type = dataFile && raw.copied ? 'normal' : 'unallocated';
  else type = 'normal';
  return { raw, type, hostOffset: d.hostOffset, reservedBits: d.reservedLow !== 0 || d.reservedHigh !== 0, hasBitmap };
}

/**
 * The host bytes a compressed cluster occupies: from its offset to the end of its last 512-byte
 * sector. The offset exceeds 2^53 only in hostile images: it is then exact as a bigint.
 */
export function compressedRange(raw: L2Entry, clusterBits: number): { offset: number | bigint; length: number } {
  const c = decodeCompressedDescriptor(raw, clusterBits);
  const offset = c.offsetHighBits !== 0 ? (BigInt(c.offsetHighBits) << 53n) + BigInt(c.hostOffset) : c.hostOffset;
  const length = (c.additionalSectors + 1) * 512 - (c.hostOffset % 512);
  return { offset, length };
}
