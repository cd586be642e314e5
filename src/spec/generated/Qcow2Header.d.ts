// Generated from spec/qcow2_header.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * The first cluster of a QCOW2 image starts with this header. All numbers are big-endian.
 *
 * Version 2 headers are 72 bytes long. Version 3 adds the feature bit masks, refcount_order and
 * header_length (bytes 72-103); header_length is at least 104 and a multiple of 8. The
 * compression_type byte (offset 104) only exists when header_length > 104; bytes 105 up to
 * header_length - 1 are padding or fields added by later versions of the specification and are
 * kept verbatim in unknown_header_fields.
 *
 * Header extensions follow directly after the header (at header_length for v3, at 72 for v2):
 * each is {u4 type, u4 length, data[length], padding to a multiple of 8} and the list ends with
 * the end-of-area extension (type 0). Like QEMU, parsing stops at the backing file name offset
 * (when set) or at the end of the first cluster, whichever is smaller, and never reads past the
 * end of the supplied bytes. Unknown extension types are kept as raw bytes.
 *
 * Byte layout of the fixed part:
 *   0-3    magic "QFI\xfb"
 *   4-7    version (2 or 3)
 *   8-15   backing_file_offset (0: no backing file)
 *   16-19  backing_file_size (backing file name length, not NUL-terminated, at most 1023)
 *   20-23  cluster_bits (9..21 in QEMU; cluster size = 1 << cluster_bits)
 *   24-31  size (virtual disk size in bytes)
 *   32-35  crypt_method (0 none, 1 AES, 2 LUKS)
 *   36-39  l1_size (number of L1 entries)
 *   40-47  l1_table_offset
 *   48-55  refcount_table_offset
 *   56-59  refcount_table_clusters
 *   60-63  nb_snapshots
 *   64-71  snapshots_offset
 *   -- version 3 only --
 *   72-79  incompatible_features (bit 0 dirty, 1 corrupt, 2 external data file,
 *          3 compression type, 4 extended L2; other bits unknown: refuse to open)
 *   80-87  compatible_features (bit 0 lazy refcounts)
 *   88-95  autoclear_features (bit 0 bitmaps extension, 1 raw external data)
 *   96-99  refcount_order (refcount_bits = 1 << refcount_order, order 0..6; v2 is always 4)
 *   100-103 header_length
 *   104    compression_type (only if header_length > 104; 0 zlib/raw deflate, 1 zstd)
 *   105..header_length-1  padding / unknown future header fields
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2Header {
  constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Bytes 0-3. QCOW magic string ("QFI\xfb").
   */
  readonly magic: Uint8Array;
  /**
   * Bytes 4-7. Version number (valid values are 2 and 3).
   */
  readonly version: number;
  /**
   * Bytes 8-11. Bits 32-63 of backing_file_offset.
   */
  readonly backingFileOffsetHi: number;
  /**
   * Bytes 12-15. Bits 0-31 of backing_file_offset: offset into the image file at which the
   * backing file name is stored (not NUL-terminated). 0 if the image has no backing file.
   * Must not be part of the first cluster's header extension area.
   */
  readonly backingFileOffsetLo: number;
  /**
   * Bytes 16-19. Length of the backing file name in bytes (at most 1023). Undefined if the
   * image does not have a backing file.
   */
  readonly backingFileSize: number;
  /**
   * Bytes 20-23. Number of bits used for addressing an offset within a cluster
   * (1 << cluster_bits is the cluster size). Must be >= 9 (512 byte clusters); QEMU
   * limits it to 21 (2 MiB clusters).
   */
  readonly clusterBits: number;
  /**
   * Bytes 24-27. Bits 32-63 of size.
   */
  readonly sizeHi: number;
  /**
   * Bytes 28-31. Bits 0-31 of size, the virtual disk size in bytes.
   */
  readonly sizeLo: number;
  /**
   * Bytes 32-35. 0 for no encryption, 1 for AES encryption, 2 for LUKS encryption.
   */
  readonly cryptMethod: number;
  /**
   * Bytes 36-39. Number of entries in the active L1 table.
   */
  readonly l1Size: number;
  /**
   * Bytes 40-43. Bits 32-63 of l1_table_offset.
   */
  readonly l1TableOffsetHi: number;
  /**
   * Bytes 44-47. Bits 0-31 of l1_table_offset: offset into the image file at which the active
   * L1 table starts. Must be aligned to a cluster boundary.
   */
  readonly l1TableOffsetLo: number;
  /**
   * Bytes 48-51. Bits 32-63 of refcount_table_offset.
   */
  readonly refcountTableOffsetHi: number;
  /**
   * Bytes 52-55. Bits 0-31 of refcount_table_offset: offset into the image file at which the
   * refcount table starts. Must be aligned to a cluster boundary.
   */
  readonly refcountTableOffsetLo: number;
  /**
   * Bytes 56-59. Number of clusters that the refcount table occupies.
   */
  readonly refcountTableClusters: number;
  /**
   * Bytes 60-63. Number of snapshots contained in the image.
   */
  readonly nbSnapshots: number;
  /**
   * Bytes 64-67. Bits 32-63 of snapshots_offset.
   */
  readonly snapshotsOffsetHi: number;
  /**
   * Bytes 68-71. Bits 0-31 of snapshots_offset: offset into the image file at which the
   * snapshot table starts. Must be aligned to a cluster boundary.
   */
  readonly snapshotsOffsetLo: number;
  /**
   * Bytes 72-75 (v3 only). Bits 32-63 of the incompatible feature bit mask (all unknown).
   */
  readonly incompatibleFeaturesHi: number | undefined;
  /**
   * Bytes 76-79 (v3 only). Bits 0-31 of the incompatible feature bit mask. An image with an
   * unknown bit set must not be opened.
   *   Bit 0: Dirty bit (refcounts may be inconsistent; only valid with lazy refcounts).
   *   Bit 1: Corrupt bit (metadata corrupted; open read-only only).
   *   Bit 2: External data file bit (guest data lives in an external data file).
   *   Bit 3: Compression type bit (compression_type field is valid and non-zero).
   *   Bit 4: Extended L2 entries (128-bit L2 entries with 32 subclusters).
   *   Bits 5-63: Reserved (set to 0).
   */
  readonly incompatibleFeaturesLo: number | undefined;
  /**
   * Bytes 80-83 (v3 only). Bits 32-63 of the compatible feature bit mask.
   */
  readonly compatibleFeaturesHi: number | undefined;
  /**
   * Bytes 84-87 (v3 only). Bits 0-31 of the compatible feature bit mask; unknown bits may be
   * ignored.
   *   Bit 0: Lazy refcounts bit (refcount updates may be delayed; see the dirty bit).
   *   Bits 1-63: Reserved (set to 0).
   */
  readonly compatibleFeaturesLo: number | undefined;
  /**
   * Bytes 88-91 (v3 only). Bits 32-63 of the autoclear feature bit mask.
   */
  readonly autoclearFeaturesHi: number | undefined;
  /**
   * Bytes 92-95 (v3 only). Bits 0-31 of the autoclear feature bit mask. A writer that does
   * not know a bit must clear it when it writes to the image.
   *   Bit 0: Bitmaps extension bit (the bitmaps extension is consistent).
   *   Bit 1: Raw external data bit (the external data file is a valid raw image;
   *          only valid together with incompatible bit 2).
   *   Bits 2-63: Reserved (set to 0).
   */
  readonly autoclearFeaturesLo: number | undefined;
  /**
   * Bytes 96-99 (v3 only). Describes the width of a reference count block entry:
   * refcount_bits = 1 << refcount_order. May not exceed 6 (64 bit refcounts).
   * Version 2 images implicitly use refcount_order 4.
   */
  readonly refcountOrder: number | undefined;
  /**
   * Bytes 100-103 (v3 only). Length of the header structure in bytes; at least 104 and a
   * multiple of 8. For version 2 images the length is always 72 bytes.
   */
  readonly headerLength: number | undefined;
  /**
   * Byte 104 (v3 only, present only if header_length > 104). Compression method used for
   * compressed clusters; all compressed clusters of an image use the same type. If it is
   * non-zero, incompatible feature bit 3 must be set.
   *   0: zlib (QEMU stores raw deflate streams, without the zlib header)
   *   1: zstd
   */
  readonly compressionType: number | undefined;
  /**
   * Bytes 105 up to header_length - 1 (v3 only): padding to a multiple of 8 and any header
   * fields added by later versions of the specification. Kept verbatim so a writer can
   * preserve them.
   */
  readonly unknownHeaderFields: Uint8Array | undefined;
  /**
   * Header extensions, starting directly after the header (at header_size). The list ends
   * with the end-of-header-extension-area marker (type 0), which is included as the last
   * element, or when extensions_end is reached.
   */
  readonly extensions: Qcow2Header.HeaderExtension[] | undefined;
  /**
   * Length of the header in bytes (header_length for v3, 72 for v2); extensions start here.
   *
   * (instance, computed lazily on first access)
   */
  readonly headerSize: number;
  /**
   * backing_file_offset as a JS number (exact when backing_file_offset_hi < 2^21).
   *
   * (instance, computed lazily on first access)
   */
  readonly backingFileOffset: number;
  /**
   * True when backing_file_offset is non-zero.
   *
   * (instance, computed lazily on first access)
   */
  readonly hasBackingFile: boolean;
  /**
   * Virtual disk size as a JS number (exact when size_hi < 2^21).
   *
   * (instance, computed lazily on first access)
   */
  readonly size: number;
  /**
   * l1_table_offset as a JS number (exact when l1_table_offset_hi < 2^21).
   *
   * (instance, computed lazily on first access)
   */
  readonly l1TableOffset: number;
  /**
   * refcount_table_offset as a JS number (exact when refcount_table_offset_hi < 2^21).
   *
   * (instance, computed lazily on first access)
   */
  readonly refcountTableOffset: number;
  /**
   * snapshots_offset as a JS number (exact when snapshots_offset_hi < 2^21).
   *
   * (instance, computed lazily on first access)
   */
  readonly snapshotsOffset: number;
  /**
   * Cluster size in bytes (1 << cluster_bits); 0 when cluster_bits > 30 (invalid image).
   *
   * (instance, computed lazily on first access)
   */
  readonly clusterSize: number;
  /**
   * Width of a refcount block entry in bits (16 for version 2); 0 if refcount_order > 30.
   *
   * (instance, computed lazily on first access)
   */
  readonly refcountBits: number;
  /**
   * Where the header extension area ends for parsing purposes: the backing file name offset
   * if set, else the end of the first cluster, clamped to the number of bytes supplied
   * (QEMU uses the same bound, without the clamp).
   *
   * (instance, computed lazily on first access)
   */
  readonly extensionsEnd: number;
  /**
   * The backing file name: backing_file_size bytes at backing_file_offset, not
   * NUL-terminated. Only present when backing_file_offset is non-zero; reading it throws
   * if those bytes were not supplied.
   *
   * (instance, computed lazily on first access)
   */
  readonly backingFileName: string | undefined;
  /**
   * Incompatible feature bit 0, dirty bit (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly incompatDirty: boolean | undefined;
  /**
   * Incompatible feature bit 1, corrupt bit (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly incompatCorrupt: boolean | undefined;
  /**
   * Incompatible feature bit 2, external data file bit (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly incompatExternalDataFile: boolean | undefined;
  /**
   * Incompatible feature bit 3, compression type bit (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly incompatCompressionType: boolean | undefined;
  /**
   * Incompatible feature bit 4, extended L2 entries (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly incompatExtendedL2: boolean | undefined;
  /**
   * True when any incompatible feature bit other than bits 0-4 is set (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly hasUnknownIncompatibleFeatures: boolean | undefined;
  /**
   * Compatible feature bit 0, lazy refcounts (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly compatLazyRefcounts: boolean | undefined;
  /**
   * Autoclear feature bit 0, bitmaps extension consistent (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly autoclearBitmaps: boolean | undefined;
  /**
   * Autoclear feature bit 1, raw external data (v3 only).
   *
   * (instance, computed lazily on first access)
   */
  readonly autoclearRawExternalData: boolean | undefined;
}
export declare namespace Qcow2Header {
  /** Enum extension_type: NAME -> value and value -> NAME. */
  export const ExtensionType: {
    /**
     * End of the header extension area.
     */
    readonly END: 0;
    /**
     * Full disk encryption header pointer.
     */
    readonly FULL_DISK_ENCRYPTION: 87539319;
    /**
     * Bitmaps extension.
     */
    readonly BITMAPS: 595929205;
    /**
     * External data file name string.
     */
    readonly EXTERNAL_DATA_FILE: 1145132097;
    /**
     * Feature name table.
     */
    readonly FEATURE_NAME_TABLE: 1745090647;
    /**
     * Backing file format name string.
     */
    readonly BACKING_FILE_FORMAT: 3799591626;
    readonly [value: number]: string;
  };
  /** Enum feature_type: NAME -> value and value -> NAME. */
  export const FeatureType: {
    readonly INCOMPATIBLE: 0;
    readonly COMPATIBLE: 1;
    readonly AUTOCLEAR: 2;
    readonly [value: number]: string;
  };
  /** Enum crypt_method: NAME -> value and value -> NAME. */
  export const CryptMethod: {
    readonly NONE: 0;
    readonly AES: 1;
    readonly LUKS: 2;
    readonly [value: number]: string;
  };
  /** Enum compression_type: NAME -> value and value -> NAME. */
  export const CompressionType: {
    /**
     * Deflate (QEMU writes raw deflate streams without the zlib header).
     */
    readonly ZLIB: 0;
    readonly ZSTD: 1;
    readonly [value: number]: string;
  };
  /**
   * One header extension:
   *   Byte 0-3: Header extension type (see extension_type)
   *   4-7:      Length of the header extension data
   *   8-n:      Header extension data
   *   n-m:      Padding to round up the header extension size to the next multiple of 8
   */
  export class HeaderExtension {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bytes 0-3. Header extension type.
     */
    readonly type: number;
    /**
     * Bytes 4-7. Length of the header extension data, excluding padding.
     */
    readonly length: number;
    /**
     * Header extension data (length bytes). Parsed for the known types; raw bytes for the
     * end marker and for unknown types.
     */
    readonly data: Qcow2Header.BackingFileFormatName | Qcow2Header.FeatureNameTable | Qcow2Header.BitmapsExtension | Qcow2Header.FullDiskEncryptionHeaderPointer | Qcow2Header.ExternalDataFileName | Uint8Array;
    /**
     * Raw bytes of data (the substream it was parsed from).
     */
    readonly _raw_data: Uint8Array | undefined;
    /**
     * Padding up to the next multiple of 8 (should be zero).
     */
    readonly padding: Uint8Array;
  }
  /**
   * Backing file format name (type 0xe2792aca): a string naming the backing file's format,
   * e.g. "qcow2" or "raw". It is not NUL-terminated.
   */
  export class BackingFileFormatName {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * The backing file format name.
     */
    readonly name: string;
  }
  /**
   * External data file name (type 0x44415441): the file name of the external data file,
   * not NUL-terminated. Only valid with incompatible feature bit 2.
   */
  export class ExternalDataFileName {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * The external data file name.
     */
    readonly name: string;
  }
  /**
   * Feature name table (type 0x6803f857): optional human-readable names for feature bits, an
   * array of 48-byte entries.
   */
  export class FeatureNameTable {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Feature name entries.
     */
    readonly entries: Qcow2Header.FeatureNameEntry[];
  }
  /**
   * One feature name table entry (48 bytes):
   *   Byte 0:   Type of feature (0 incompatible, 1 compatible, 2 autoclear)
   *   1:        Bit number within the selected feature bitmap (0-63)
   *   2-47:     Feature name (padded with zeros, not necessarily NUL-terminated if it
   *             uses all 46 bytes)
   */
  export class FeatureNameEntry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Byte 0. Type of feature.
     */
    readonly type: number;
    /**
     * Byte 1. Bit number within the selected feature bitmap (valid values 0-63).
     */
    readonly bitNumber: number;
    /**
     * Bytes 2-47. Feature name; the zero padding is stripped.
     */
    readonly name: string;
  }
  /**
   * Bitmaps extension (type 0x23852875), only meaningful when autoclear bit 0 is set:
   *   Byte 0-3:   nb_bitmaps (at least 1, at most 65535)
   *   4-7:        Reserved, must be zero
   *   8-15:       bitmap_directory_size (bytes, at most 64 MiB)
   *   16-23:      bitmap_directory_offset (cluster-aligned)
   */
  export class BitmapsExtension {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bytes 0-3. The number of bitmaps contained in the image.
     */
    readonly nbBitmaps: number;
    /**
     * Bytes 4-7. Reserved, must be zero.
     */
    readonly reserved: number;
    /**
     * Bytes 8-11. Bits 32-63 of bitmap_directory_size.
     */
    readonly bitmapDirectorySizeHi: number;
    /**
     * Bytes 12-15. Bits 0-31 of bitmap_directory_size, the size of the directory in bytes.
     */
    readonly bitmapDirectorySizeLo: number;
    /**
     * Bytes 16-19. Bits 32-63 of bitmap_directory_offset.
     */
    readonly bitmapDirectoryOffsetHi: number;
    /**
     * Bytes 20-23. Bits 0-31 of bitmap_directory_offset, where the directory starts.
     */
    readonly bitmapDirectoryOffsetLo: number;
    /**
     * bitmap_directory_size as a JS number (exact when the hi half is < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly bitmapDirectorySize: number;
    /**
     * bitmap_directory_offset as a JS number (exact when the hi half is < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly bitmapDirectoryOffset: number;
  }
  /**
   * Full disk encryption header pointer (type 0x0537be77), present when crypt_method is 2
   * (LUKS):
   *   Byte 0-7:   Offset into the image file of the encryption header (cluster-aligned)
   *   8-15:       Length of the written encryption header in bytes
   */
  export class FullDiskEncryptionHeaderPointer {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bytes 0-3. Bits 32-63 of offset.
     */
    readonly offsetHi: number;
    /**
     * Bytes 4-7. Bits 0-31 of offset.
     */
    readonly offsetLo: number;
    /**
     * Bytes 8-11. Bits 32-63 of length.
     */
    readonly lengthHi: number;
    /**
     * Bytes 12-15. Bits 0-31 of length.
     */
    readonly lengthLo: number;
    /**
     * Encryption header offset as a JS number (exact when offset_hi < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly offset: number;
    /**
     * Encryption header length as a JS number (exact when length_hi < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly length: number;
  }
}
