/**
 * Facts of the QCOW2 format (QEMU docs/interop/qcow2.rst) and the limits we enforce against hostile
 * images. Every limit carries its reason.
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

export const MIN_CLUSTER_BITS = 9;
/** QEMU's implementation limit: 2 MiB clusters. */
export const MAX_CLUSTER_BITS = 21;
/** Extended L2 entries need subclusters of at least 512 bytes: 32 × 512 = 16 KiB. */
export const MIN_CLUSTER_BITS_EXTL2 = 14;
export const SUBCLUSTERS_PER_CLUSTER = 32;
export const MAX_REFCOUNT_ORDER = 6;
/** v2 images always have 16-bit refcounts. */
export const V2_REFCOUNT_ORDER = 4;

/** The backing file name may not be longer than 1023 bytes (spec). */
export const MAX_BACKING_FILE_NAME = 1023;
/** QEMU refuses L1 tables over 32 MiB: without a limit a 4-byte field allocates gigabytes. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** QEMU refuses refcount tables over 8 MiB, for the same reason. */
export const MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024;
/** QEMU's limit on snapshots (QCOW_MAX_SNAPSHOTS). */
export const MAX_SNAPSHOTS = 65536;
/** QEMU's limit on the snapshot table size (QCOW_MAX_SNAPSHOTS_SIZE: 64 MiB). */
export const MAX_SNAPSHOT_TABLE_BYTES = 64 * 1024 * 1024;
/** QEMU's limit on one snapshot's extra data (QCOW_MAX_SNAPSHOT_EXTRA_DATA). */
export const MAX_SNAPSHOT_EXTRA_DATA = 1024;
/** QEMU supports at most 65535 bitmaps. */
export const MAX_BITMAPS = 65535;
/** QEMU's limit on the bitmap directory (QCOW2_MAX_BITMAP_DIRECTORY_SIZE: 64 KiB × 1024). */
export const MAX_BITMAP_DIRECTORY_BYTES = 1024 * 65536;
/** QEMU's limit on a bitmap name. */
export const MAX_BITMAP_NAME = 1023;
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
