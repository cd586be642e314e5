// Generated from spec/qcow2_refcount_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * The refcount table (refcount_table_clusters clusters at refcount_table_offset) is an array of
 * big-endian 64-bit entries, each pointing to one refcount block:
 *   Bit  0 -  8:    Reserved (set to 0)
 *        9 - 63:    Bits 9-63 of the offset into the image file at which the refcount block
 *                   starts. Must be aligned to a cluster boundary. If this is 0, the
 *                   corresponding refcount block has not yet been allocated. All refcounts
 *                   managed by this refcount block are 0.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2RefcountTable {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, numEntries: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Number of 8-byte entries to read (refcount_table_clusters * cluster_size / 8).
   *
   * (parameter)
   */
  readonly numEntries: number;
  /**
   * The refcount table entries.
   */
  readonly entries: Qcow2RefcountTable.RefcountTableEntry[];
}
export declare namespace Qcow2RefcountTable {
  /**
   * One 64-bit refcount table entry, read most significant bit first.
   */
  export class RefcountTableEntry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bits 32-63 of the refcount block offset (not shifted).
     */
    readonly offsetHi: number;
    /**
     * Bits 9-31 of the refcount block offset, as the value of those bits shifted right by 9.
     */
    readonly offsetLo: number;
    /**
     * Bits 0-8. Reserved (set to 0).
     */
    readonly reserved: number;
    /**
     * Refcount block offset as a JS number (exact when offset_hi < 2^21, i.e. below 2^53;
     * use offset_hi/offset_lo for hostile input). 0: block not allocated, all its
     * refcounts are 0.
     *
     * (instance, computed lazily on first access)
     */
    readonly offset: number;
    /**
     * True when the refcount block offset is 0.
     *
     * (instance, computed lazily on first access)
     */
    readonly isUnallocated: boolean;
  }
}
