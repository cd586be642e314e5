// Generated from spec/qcow2_refcount_block.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * A refcount block occupies one cluster and holds cluster_size * 8 / refcount_bits entries,
 * refcount_bits = 1 << refcount_order (order 0..6, i.e. 1 to 64 bits; version 2 images always
 * use order 4). Entry n is the reference count of host cluster
 * (refcount table index * entries per block + n).
 *
 * Entries narrower than a byte (orders 0-2: 1, 2 and 4 bits) are packed starting at the least
 * significant bit of each byte: entry n lives in byte n * refcount_bits / 8 at bit position
 * (n * refcount_bits) % 8. Entries of 8, 16, 32 and 64 bits are big-endian integers.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2RefcountBlock {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, refcountOrder: number, numEntries: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * refcount_order from the header (0..6).
   *
   * (parameter)
   */
  readonly refcountOrder: number;
  /**
   * Number of entries to read (cluster_size * 8 / refcount_bits for a whole block).
   *
   * (parameter)
   */
  readonly numEntries: number;
  /**
   * The reference counts, in host cluster order.
   */
  readonly entries: Qcow2RefcountBlock.RefcountEntry[];
  /**
   * Width of one entry in bits.
   *
   * (instance, computed lazily on first access)
   */
  readonly refcountBits: number;
}
export declare namespace Qcow2RefcountBlock {
  /**
   * One reference count. Exactly one group of the fields below is present, depending on
   * refcount_order; value combines them.
   *
   * The byte-aligned fields come first on purpose: the compiler emits an unconditional
   * alignToByte() before the first byte-aligned field that follows a bit field (even when
   * both are conditional), which would drop the remaining bits of a byte shared by several
   * sub-byte entries. With this order nothing realigns the stream between entries.
   */
  export class RefcountEntry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Order 3 (8-bit refcounts).
     */
    readonly valueU1: number | undefined;
    /**
     * Order 4 (16-bit refcounts, big-endian; the only order in version 2).
     */
    readonly valueU2: number | undefined;
    /**
     * Order 5 (32-bit refcounts, big-endian).
     */
    readonly valueU4: number | undefined;
    /**
     * Order 6 (64-bit refcounts, big-endian), bits 32-63.
     */
    readonly valueHi: number | undefined;
    /**
     * Order 6 (64-bit refcounts, big-endian), bits 0-31.
     */
    readonly valueLo: number | undefined;
    /**
     * Order 0 (1-bit refcounts), packed LSB first.
     */
    readonly valueB1: boolean | undefined;
    /**
     * Order 1 (2-bit refcounts), packed LSB first.
     */
    readonly valueB2: number | undefined;
    /**
     * Order 2 (4-bit refcounts), packed LSB first.
     */
    readonly valueB4: number | undefined;
    /**
     * The reference count as a JS number. Exact for orders 0-5; for order 6 exact only
     * when value_hi < 2^21 (use value_hi/value_lo otherwise).
     *
     * (instance, computed lazily on first access)
     */
    readonly value: number;
  }
}
