/**
 * The QCOW2 header (spec: "Header"), versions 2 and 3.
 *
 *   0  magic u32            40 l1_table_offset u64        72 incompatible_features u64 (v3)
 *   4  version u32          48 refcount_table_offset u64  80 compatible_features u64
 *   8  backing_file_offset  56 refcount_table_clusters    88 autoclear_features u64
 *  16  backing_file_size    60 nb_snapshots u32           96 refcount_order u32
 *  20  cluster_bits u32     64 snapshots_offset u64      100 header_length u32
 *  24  size u64                                          104 compression_type u8 (if length > 104)
 *  32  crypt_method u32                                  105.. padding / future fields (kept)
 *  36  l1_size u32
 *
 * This codec is purely structural: it checks only what it needs to find the fields (magic,
 * version, enough bytes). Semantic checks live in validate.ts.
 */
import { corrupt, unsupported } from '../errors.js';
import { readU64, requireBytes, view, writeU64 } from './bytes.js';
import {
  HEADER_COMPRESSION_TYPE_OFFSET,
  HEADER_V2_LENGTH,
  HEADER_V3_MIN_LENGTH,
  QCOW2_MAGIC,
  V2_REFCOUNT_ORDER,
} from './constants.js';

export interface Header {
  version: 2 | 3;
  backingFileOffset: bigint;
  backingFileSize: number;
  clusterBits: number;
  size: bigint;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: bigint;
  refcountTableOffset: bigint;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: bigint;
  /** v3 fields; v2 images read as 0 / order 4 / length 72. */
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  /** Byte 104 when header_length > 104, else 0 (deflate). */
  compressionType: number;
  /** Bytes 105 .. header_length-1: padding and fields unknown to us, preserved on rewrite. */
  tail: Uint8Array;
}

/** Decodes the header at the start of `bytes` (which must hold at least header_length bytes). */
export function decodeHeader(bytes: Uint8Array): Header {
  requireBytes(bytes, 0, 8, 'magic');
  const dv = view(bytes);
  const magic = dv.getUint32(0);
  if (magic !== QCOW2_MAGIC) {
    throw corrupt(`not a qcow2 image (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x514649fb)`, {
      field: 'magic',
      offset: 0,
    });
  }
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw unsupported(`qcow2 version ${version} is not supported (only 2 and 3)`, { field: 'version', offset: 4 });
  }
  requireBytes(bytes, 0, HEADER_V2_LENGTH, 'header');
  const common = {
    version: version as 2 | 3,
    backingFileOffset: readU64(dv, 8),
    backingFileSize: dv.getUint32(16),
    clusterBits: dv.getUint32(20),
    size: readU64(dv, 24),
    cryptMethod: dv.getUint32(32),
    l1Size: dv.getUint32(36),
    l1TableOffset: readU64(dv, 40),
    refcountTableOffset: readU64(dv, 48),
    refcountTableClusters: dv.getUint32(56),
    nbSnapshots: dv.getUint32(60),
    snapshotsOffset: readU64(dv, 64),
  };
  if (version === 2) {
    return {
      ...common,
      incompatibleFeatures: 0n,
      compatibleFeatures: 0n,
      autoclearFeatures: 0n,
      refcountOrder: V2_REFCOUNT_ORDER,
      headerLength: HEADER_V2_LENGTH,
      compressionType: 0,
      tail: new Uint8Array(0),
    };
  }
  requireBytes(bytes, 0, HEADER_V3_MIN_LENGTH, 'header');
  const headerLength = dv.getUint32(100);
  if (headerLength < HEADER_V3_MIN_LENGTH) {
    throw corrupt(`header_length ${headerLength} is below the v3 minimum of 104`, {
      field: 'header_length',
      offset: 100,
    });
  }
  requireBytes(bytes, 0, headerLength, 'header_length');
  const hasCompressionType = headerLength > HEADER_COMPRESSION_TYPE_OFFSET;
  return {
    ...common,
    incompatibleFeatures: readU64(dv, 72),
    compatibleFeatures: readU64(dv, 80),
    autoclearFeatures: readU64(dv, 88),
    refcountOrder: dv.getUint32(96),
    headerLength,
    compressionType: hasCompressionType ? dv.getUint8(HEADER_COMPRESSION_TYPE_OFFSET) : 0,
    tail: hasCompressionType ? bytes.slice(HEADER_COMPRESSION_TYPE_OFFSET + 1, headerLength) : new Uint8Array(0),
  };
}

/** Encodes the header into exactly header_length bytes (72 for v2). */
export function encodeHeader(h: Header): Uint8Array {
  const length = h.version === 2 ? HEADER_V2_LENGTH : h.headerLength;
  const bytes = new Uint8Array(length);
  const dv = view(bytes);
  dv.setUint32(0, QCOW2_MAGIC);
  dv.setUint32(4, h.version);
  writeU64(dv, 8, h.backingFileOffset);
  dv.setUint32(16, h.backingFileSize);
  dv.setUint32(20, h.clusterBits);
  writeU64(dv, 24, h.size);
  dv.setUint32(32, h.cryptMethod);
  dv.setUint32(36, h.l1Size);
  writeU64(dv, 40, h.l1TableOffset);
  writeU64(dv, 48, h.refcountTableOffset);
  dv.setUint32(56, h.refcountTableClusters);
  dv.setUint32(60, h.nbSnapshots);
  writeU64(dv, 64, h.snapshotsOffset);
  if (h.version === 2) return bytes;
  writeU64(dv, 72, h.incompatibleFeatures);
  writeU64(dv, 80, h.compatibleFeatures);
  writeU64(dv, 88, h.autoclearFeatures);
  dv.setUint32(96, h.refcountOrder);
  dv.setUint32(100, h.headerLength);
  if (length > HEADER_COMPRESSION_TYPE_OFFSET) {
    dv.setUint8(HEADER_COMPRESSION_TYPE_OFFSET, h.compressionType);
    bytes.set(h.tail.subarray(0, length - HEADER_COMPRESSION_TYPE_OFFSET - 1), HEADER_COMPRESSION_TYPE_OFFSET + 1);
  }
  return bytes;
}
