/**
 * Facts of the QCOW2 format (QEMU docs/interop/qcow2.rst): magic, field offsets and sizes, feature
 * bits, encodings. The limits we enforce (largest tables, counts, names) live in src/limits.ts.
 */

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

export const HEADER_V2_LENGTH = 72;
export const HEADER_V3_MIN_LENGTH = 104;
/** The compression type byte at 104 is present only when header_length >= 112 (rounded to 8). */
export const HEADER_COMPRESSION_TYPE_OFFSET = 104;

// Incompatible feature bits.
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
export const INCOMPAT_KNOWN =
  INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

// Compatible feature bits.
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

// Autoclear feature bits.
export const AUTOCLEAR_BITMAPS = 1n << 0n;
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
export const AUTOCLEAR_KNOWN = AUTOCLEAR_BITMAPS | AUTOCLEAR_DATA_FILE_RAW;

export const CRYPT_NONE = 0;
export const CRYPT_AES = 1;
export const CRYPT_LUKS = 2;

export const COMPRESSION_DEFLATE = 0;
export const COMPRESSION_ZSTD = 1;

// Header extension types.
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO_HEADER = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

export const FEATURE_TABLE_ENTRY_SIZE = 48;
export const FEATURE_NAME_SIZE = 46;
export const BITMAPS_EXT_SIZE = 24;
export const CRYPTO_HEADER_EXT_SIZE = 16;

/** The spec: clusters are at least 512 bytes (offsets in table entries start at bit 9). */
export const MIN_CLUSTER_BITS = 9;
/** Extended L2 entries need subclusters of at least 512 bytes: 32 × 512 = 16 KiB. */
export const MIN_CLUSTER_BITS_EXTL2 = 14;
export const SUBCLUSTERS_PER_CLUSTER = 32;
/** refcount_order is at most 6: refcounts of 64 bits, the widest the format defines. */
export const MAX_REFCOUNT_ORDER = 6;
/** v2 images always have 16-bit refcounts. */
export const V2_REFCOUNT_ORDER = 4;
/** Offsets in L1/L2/refcount-table entries are bits 9-55: at most 2^56 - 512. */
export const MAX_HOST_OFFSET_BITS = 56;

/** Snapshot extra data known fields: vm_state_size_large(8) + disk_size(8) + icount(8). */
export const SNAPSHOT_EXTRA_V3_MIN = 16;
export const SNAPSHOT_EXTRA_FULL = 24;
export const SNAPSHOT_ENTRY_FIXED = 40;
export const BITMAP_DIR_ENTRY_FIXED = 24;

export const BITMAP_FLAG_IN_USE = 1 << 0;
export const BITMAP_FLAG_AUTO = 1 << 1;
export const BITMAP_FLAG_EXTRA_DATA_COMPATIBLE = 1 << 2;
export const BITMAP_TYPE_DIRTY_TRACKING = 1;

/**
 * QEMU's block layer counts in 512-byte sectors (BDRV_SECTOR_SIZE): it takes a qcow2 image's
 * virtual size as `size / 512` sectors, so a header size that is not a multiple of 512 is rounded
 * down (qemu-img info shows the rounded size, qemu-io refuses requests past it).
 */
export const SECTOR_SIZE = 512;
