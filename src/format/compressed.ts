/**
 * Compressed cluster descriptor (spec: "Compressed Clusters Descriptor"), bits 0-61 of an L2 entry
 * whose bit 62 is set. With x = 62 - (cluster_bits - 8):
 *
 *   bits 0 .. x-1   host byte offset (not aligned; bits above 55 must be 0)
 *   bits x .. 61    number of additional 512-byte sectors beyond the one holding the offset
 *
 * The offset is split at bit 53 so nothing is lost: `hostOffset` (bits 0-52) is an exact JS
 * number and `offsetHighBits` (bits 53 .. x-1) must be zero in any image a file system can hold.
 */
import { TWO_32 } from './bytes.js';

export interface CompressedDescriptor {
  /** Bits 0-52 of the host byte offset. */
  hostOffset: number;
  /** Bits 53 .. x-1 of the host byte offset (nonzero only in hostile images). */
  offsetHighBits: number;
  additionalSectors: number;
}

/** Number of descriptor bits that hold the host offset: x = 62 - (cluster_bits - 8). */
export function compressedOffsetBits(clusterBits: number): number {
  return 62 - (clusterBits - 8);
}

/** Bits of the high descriptor word (bits 32-61) that belong to the offset. */
function hiOffsetBits(clusterBits: number): number {
  return compressedOffsetBits(clusterBits) - 32;
}

export function decodeCompressedDescriptor(
  d: { descriptorHi: number; descriptorLo: number },
  clusterBits: number,
): CompressedDescriptor {
  const bits = hiOffsetBits(clusterBits); // 17 (2 MiB clusters) .. 29 (512 B clusters)
  const offsetHi = d.descriptorHi & ((1 << bits) - 1);
  return {
    hostOffset: (offsetHi & 0x1f_ffff) * TWO_32 + d.descriptorLo, // bits 32-52
    offsetHighBits: offsetHi >>> 21,
    additionalSectors: d.descriptorHi >>> bits,
  };
}

export function encodeCompressedDescriptor(
  c: CompressedDescriptor,
  clusterBits: number,
): { descriptorHi: number; descriptorLo: number } {
  const bits = hiOffsetBits(clusterBits);
  const offsetHi = (c.offsetHighBits * 0x20_0000 + Math.floor(c.hostOffset / TWO_32)) & ((1 << bits) - 1);
  return {
    descriptorHi: ((c.additionalSectors << bits) | offsetHi) & 0x3fff_ffff,
    descriptorLo: c.hostOffset % TWO_32,
  };
}

/** Bytes the compressed data may span: from the offset to the end of its last sector. */
export function compressedSpan(c: CompressedDescriptor): { start: number; length: number } {
  const sectorStart = c.hostOffset - (c.hostOffset % 512);
  const end = sectorStart + (c.additionalSectors + 1) * 512;
  return { start: c.hostOffset, length: end - c.hostOffset };
}
