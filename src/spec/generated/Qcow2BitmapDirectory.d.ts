// Generated from spec/qcow2_bitmap_directory.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * The bitmap directory (bitmap_directory_size bytes at bitmap_directory_offset, both from the
 * bitmaps header extension) is a list of nb_bitmaps variable-length entries, each aligned to 8
 * bytes:
 *   Byte 0 -  7:    bitmap_table_offset: offset into the image file at which the bitmap table
 *                   for the bitmap starts. Must be aligned to a cluster boundary.
 *        8 - 11:    bitmap_table_size: number of entries in the bitmap table.
 *       12 - 15:    flags
 *                   Bit 0: in_use. The bitmap was not saved correctly and may be inconsistent.
 *                   1: auto. The bitmap must reflect all changes of the virtual disk by any
 *                      application that would write to this qcow2 file (including writes,
 *                      snapshot switching, etc.).
 *                   2: extra_data_compatible. The extra data may be ignored if it is not
 *                      understood (otherwise the bitmap cannot be used).
 *                   Bits 3 - 31 are reserved and must be 0.
 *            16:    type: 1 is the only defined value (dirty tracking bitmap).
 *            17:    granularity_bits: granularity = 1 << granularity_bits (9..31).
 *       18 - 19:    name_size (at most 1023).
 *       20 - 23:    extra_data_size (must be 0 in the current version).
 *       variable:   extra_data
 *       variable:   name (UTF-8, not NUL-terminated)
 *       variable:   Padding to round up the entry size to the next multiple of 8.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2BitmapDirectory {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, nbBitmaps: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Number of directory entries to read (nb_bitmaps from the bitmaps extension).
   *
   * (parameter)
   */
  readonly nbBitmaps: number;
  /**
   * The bitmap directory entries.
   */
  readonly entries: Qcow2BitmapDirectory.BitmapDirectoryEntry[];
}
export declare namespace Qcow2BitmapDirectory {
  /** Enum bitmap_type: NAME -> value and value -> NAME. */
  export const BitmapType: {
    /**
     * Dirty tracking bitmap.
     */
    readonly DIRTY_TRACKING: 1;
    readonly [value: number]: string;
  };
  /**
   * One bitmap directory entry (24 fixed bytes, extra data, name, padding to 8).
   */
  export class BitmapDirectoryEntry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bytes 0-3. Bits 32-63 of bitmap_table_offset.
     */
    readonly bitmapTableOffsetHi: number;
    /**
     * Bytes 4-7. Bits 0-31 of bitmap_table_offset.
     */
    readonly bitmapTableOffsetLo: number;
    /**
     * Bytes 8-11. Number of entries in the bitmap table of the bitmap.
     */
    readonly bitmapTableSize: number;
    /**
     * Bytes 12-15. Bit 0 in_use, bit 1 auto, bit 2 extra_data_compatible, bits 3-31
     * reserved (must be 0).
     */
    readonly flags: number;
    /**
     * Byte 16. Bitmap type; 1 (dirty tracking bitmap) is the only defined value.
     */
    readonly type: number;
    /**
     * Byte 17. Granularity bits (granularity = 1 << granularity_bits, 9..31).
     */
    readonly granularityBits: number;
    /**
     * Bytes 18-19. Size of the bitmap name (at most 1023).
     */
    readonly nameSize: number;
    /**
     * Bytes 20-23. Size of type-specific extra data (must be 0 in the current version).
     */
    readonly extraDataSize: number;
    /**
     * Type-specific extra data, kept verbatim.
     */
    readonly extraData: Uint8Array;
    /**
     * The name of the bitmap (UTF-8, not NUL-terminated).
     */
    readonly name: string;
    /**
     * Padding to round the entry size up to a multiple of 8 (counted from the entry start).
     */
    readonly padding: Uint8Array;
    /**
     * bitmap_table_offset as a JS number (exact when the hi half is < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly bitmapTableOffset: number;
    /**
     * Flags bit 0, in_use.
     *
     * (instance, computed lazily on first access)
     */
    readonly inUse: boolean;
    /**
     * Flags bit 1, auto.
     *
     * (instance, computed lazily on first access)
     */
    readonly auto: boolean;
    /**
     * Flags bit 2, extra_data_compatible.
     *
     * (instance, computed lazily on first access)
     */
    readonly extraDataCompatible: boolean;
    /**
     * True when any reserved flag bit (3-31) is set.
     *
     * (instance, computed lazily on first access)
     */
    readonly hasReservedFlags: boolean;
    /**
     * Total size of this entry in bytes, including padding (a multiple of 8).
     *
     * (instance, computed lazily on first access)
     */
    readonly entrySize: number;
  }
}
