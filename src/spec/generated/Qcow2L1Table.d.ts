// Generated from spec/qcow2_l1_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * The L1 table (l1_size entries at l1_table_offset for the active image, or at a snapshot's
 * l1_table_offset) maps the guest address space in units of one L2 table's coverage. Each
 * entry is a big-endian 64-bit word:
 *   Bit  0 -  8:    Reserved (set to 0)
 *        9 - 55:    Bits 9-55 of the offset into the image file at which the L2 table
 *                   starts. Must be aligned to a cluster boundary. If the offset is 0, the
 *                   L2 table and all clusters described by this L2 table are unallocated.
 *       56 - 62:    Reserved (set to 0)
 *            63:    0 for an L2 table that is unused or requires COW, 1 if its refcount is
 *                   exactly one. This information is only accurate in the active L1 table.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2L1Table {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, numEntries: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Number of 8-byte entries to read (l1_size from the header or snapshot).
   *
   * (parameter)
   */
  readonly numEntries: number;
  /**
   * The L1 entries, in guest address order.
   */
  readonly entries: Qcow2L1Table.L1Entry[];
}
export declare namespace Qcow2L1Table {
  /**
   * One 64-bit L1 table entry, read most significant bit first.
   */
  export class L1Entry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bit 63, COPIED. Set if the L2 table's refcount is exactly one (no COW needed).
     */
    readonly copied: boolean;
    /**
     * Bits 56-62. Reserved (set to 0).
     */
    readonly reservedHi: number;
    /**
     * Bits 32-55 of the L2 table offset (value of bits 32-55, not shifted).
     */
    readonly offsetHi: number;
    /**
     * Bits 9-31 of the L2 table offset, as the value of those bits shifted right by 9.
     */
    readonly offsetLo: number;
    /**
     * Bits 0-8. Reserved (set to 0).
     */
    readonly reservedLo: number;
    /**
     * Offset of the L2 table in the image file (bits 9-55 of the entry, exact as a JS
     * number). 0 means the L2 table and all clusters it describes are unallocated.
     *
     * (instance, computed lazily on first access)
     */
    readonly offset: number;
    /**
     * True when the L2 table offset is 0.
     *
     * (instance, computed lazily on first access)
     */
    readonly isUnallocated: boolean;
    /**
     * True when any reserved bit (0-8 or 56-62) is set.
     *
     * (instance, computed lazily on first access)
     */
    readonly hasReservedBits: boolean;
  }
}
