// Generated from spec/qcow2_compressed_descriptor.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * Parses one big-endian 64-bit word whose bits 0-61 are a compressed cluster descriptor: a
 * whole L2 entry of a compressed cluster (bits 62-63 are then the compressed flag and COPIED,
 * which is always 0 for compressed clusters), or the bare descriptor with bits 62-63 zero.
 *
 * With x = 62 - (cluster_bits - 8):
 *   Bit  0 - x-1:   Host cluster offset. This is usually _not_ aligned to a cluster or
 *                   sector boundary! If cluster_bits is small enough that this field includes
 *                   bits beyond 55, those upper bits must be set to 0.
 *        x - 61:    Number of additional 512-byte sectors used for the compressed data,
 *                   beyond the sector containing the offset in the previous field. Some of
 *                   these sectors may reside in the next contiguous host cluster.
 *
 * Note that the compressed data does not necessarily occupy all of the bytes in the final
 * sector; rather, decompression stops when it has produced a cluster of data.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2CompressedDescriptor {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, clusterBits: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * cluster_bits from the image header (9..21; other values give meaningless instances).
   *
   * (parameter)
   */
  readonly clusterBits: number;
  /**
   * Bits 62-63 of the word; not part of the descriptor. In an L2 entry, bit 63 is COPIED
   * (0 for compressed clusters) and bit 62 the compressed flag (1).
   */
  readonly flagBits: number;
  /**
   * Bits 32-61 of the descriptor, raw.
   */
  readonly descHi: number;
  /**
   * Bits 0-31 of the descriptor, raw (always the low 32 bits of the host offset).
   */
  readonly descLo: number;
  /**
   * x = 62 - (cluster_bits - 8), the number of bits of the host offset (49..61).
   *
   * (instance, computed lazily on first access)
   */
  readonly offsetBits: number;
  /**
   * Bits x-61: number of additional 512-byte sectors used for the compressed data, beyond
   * the sector containing the offset.
   *
   * (instance, computed lazily on first access)
   */
  readonly nbSectors: number;
  /**
   * Bits 32..x-1 of the host offset (the value of those bits, not shifted).
   *
   * (instance, computed lazily on first access)
   */
  readonly offsetHi: number;
  /**
   * Bits 0-31 of the host offset.
   *
   * (instance, computed lazily on first access)
   */
  readonly offsetLo: number;
  /**
   * Host byte offset of the compressed data as a JS number (exact when offset_hi < 2^21,
   * i.e. offset < 2^53; valid images keep it below 2^56, so use offset_hi/offset_lo when
   * exactness matters for hostile input).
   *
   * (instance, computed lazily on first access)
   */
  readonly offset: number;
  /**
   * Position of the compressed data within its first 512-byte sector.
   *
   * (instance, computed lazily on first access)
   */
  readonly sectorOffset: number;
  /**
   * Number of bytes from offset to the end of the last sector used (nb_sectors + 1 sectors
   * in total). The compressed stream may be shorter than this.
   *
   * (instance, computed lazily on first access)
   */
  readonly compressedSize: number;
}
