// Generated from spec/qcow2_bitmap_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * A bitmap table (bitmap_table_size entries at bitmap_table_offset) maps the bitmap's data
 * in units of one cluster. Each entry is a big-endian 64-bit word:
 *   Bit       0:    Reserved and must be zero if bits 9 - 55 are non-zero.
 *                   If bits 9 - 55 are zero:
 *                     0: Cluster should be read as all zeros.
 *                     1: Cluster should be read as all ones.
 *        1 -  8:    Reserved and must be zero.
 *        9 - 55:    Bits 9 - 55 of the host cluster offset. Must be aligned to a cluster
 *                   boundary. If the offset is 0, the cluster is unallocated; see bit 0.
 *       56 - 63:    Reserved and must be zero.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2BitmapTable {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, numEntries: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Number of 8-byte entries to read (bitmap_table_size from the directory entry).
   *
   * (parameter)
   */
  readonly numEntries: number;
  /**
   * The bitmap table entries.
   */
  readonly entries: Qcow2BitmapTable.BitmapTableEntry[];
}
export declare namespace Qcow2BitmapTable {
  /**
   * One 64-bit bitmap table entry, read most significant bit first.
   */
  export class BitmapTableEntry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bits 56-63. Reserved and must be zero.
     */
    readonly reservedHi: number;
    /**
     * Bits 32-55 of the host cluster offset (not shifted).
     */
    readonly offsetHi: number;
    /**
     * Bits 9-31 of the host cluster offset, as the value of those bits shifted right by 9.
     */
    readonly offsetLo: number;
    /**
     * Bits 1-8. Reserved and must be zero.
     */
    readonly reservedLo: number;
    /**
     * Bit 0. If the offset is 0: set means the cluster reads as all ones, clear as all
     * zeros. Reserved (must be zero) if the offset is non-zero.
     */
    readonly allOnes: boolean;
    /**
     * Host cluster offset (bits 9-55, exact as a JS number); 0 if unallocated.
     *
     * (instance, computed lazily on first access)
     */
    readonly offset: number;
    /**
     * True when the offset is 0 (the cluster reads as all zeros or all ones, see all_ones).
     *
     * (instance, computed lazily on first access)
     */
    readonly isUnallocated: boolean;
  }
}
