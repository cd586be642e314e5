/**
 * Every limit of the project, each defined once, with the reason for its value.
 *
 * A limit is a bound we choose or inherit: the largest metadata a hostile image may make us read,
 * the deepest backing chain, the largest request, how much memory a cache or a copy loop may hold.
 * Facts of the format (magic numbers, feature bits, field offsets and widths, the smallest cluster)
 * are not limits and stay in src/format/constants.ts.
 *
 * Pure constants: this module imports nothing, so every layer (format codecs, engines, create,
 * check, the CLI) can import it.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// ---------------------------------------------------------------------------------------------
// Metadata a hostile image may claim. Without a bound, a 4-byte header field could make us
// allocate gigabytes; each bound is QEMU's (block/qcow2.h, QEMU 7.2), so we refuse what it refuses.
// ---------------------------------------------------------------------------------------------

/** QEMU's implementation limit (MAX_CLUSTER_BITS): clusters of at most 2 MiB. The spec allows more. */
export const MAX_CLUSTER_BITS = 21;
/** 2 MiB: the largest cluster, from {@link MAX_CLUSTER_BITS}. */
export const MAX_CLUSTER_SIZE = 2 ** MAX_CLUSTER_BITS;
/** QEMU refuses L1 tables over 32 MiB (QCOW_MAX_L1_SIZE): 2 PiB of image at 64 KiB clusters. */
export const MAX_L1_BYTES = 32 * MiB;
/** QEMU refuses refcount tables over 8 MiB (QCOW_MAX_REFTABLE_SIZE), for the same reason. */
export const MAX_REFCOUNT_TABLE_BYTES = 8 * MiB;
/** QEMU's limit on the number of snapshots (QCOW_MAX_SNAPSHOTS). */
export const MAX_SNAPSHOTS = 65536;
/** QEMU's limit on the snapshot table's size (QCOW_MAX_SNAPSHOTS_SIZE: 64 MiB). */
export const MAX_SNAPSHOT_TABLE_BYTES = 64 * MiB;
/** QEMU's limit on one snapshot's extra data (QCOW_MAX_SNAPSHOT_EXTRA_DATA). */
export const MAX_SNAPSHOT_EXTRA_DATA = 1024;
/** QEMU supports at most 65535 persistent bitmaps (QCOW2_MAX_BITMAPS). */
export const MAX_BITMAPS = 65535;
/** QEMU's limit on the bitmap directory (QCOW2_MAX_BITMAP_DIRECTORY_SIZE: 1024 × 64 KiB = 64 MiB). */
export const MAX_BITMAP_DIRECTORY_BYTES = 1024 * 64 * KiB;
/** Bitmap granularities QEMU supports (granularity_bits 9 to 31; the spec allows 0 to 63). */
export const MIN_BITMAP_GRANULARITY_BITS = 9;
export const MAX_BITMAP_GRANULARITY_BITS = 31;
/** Largest bitmap table we read into memory (QEMU's BME_MAX_TABLE_SIZE is 1 GiB of entries; 64 MiB covers 2^53 bytes at 64 KiB granularity). */
export const MAX_BITMAP_TABLE_BYTES = 64 * MiB;
/** QEMU's limit on a bitmap table (BME_MAX_TABLE_SIZE): 0x8000000 entries. */
export const MAX_BITMAP_TABLE_ENTRIES = 0x800_0000;
/** QEMU's limit on a bitmap's data (BME_MAX_PHYS_SIZE): 512 MiB of table entries times clusters. */
export const MAX_BITMAP_DATA_BYTES = 512 * MiB;
/**
 * Bitmap data our engines hold in memory to keep an image's bitmaps up to date (all bitmaps
 * together; QEMU holds them all as well): 256 MiB covers a 1 TiB disk at 512-byte granularity.
 */
export const MAX_TRACKED_BITMAP_BYTES = 256 * MiB;
/** Bitmap data clusters an exported bitmap keeps in memory (64 of 64 KiB: 4 MiB). */
export const BITMAP_DATA_CACHE_CLUSTERS = 64;
/** QEMU's limit on a bitmap name (BDRV_BITMAP_MAX_NAME_SIZE). */
export const MAX_BITMAP_NAME = 1023;
/** The spec: a backing file name may not be longer than 1023 bytes. */
export const MAX_BACKING_FILE_NAME = 1023;

// ---------------------------------------------------------------------------------------------
// Limits of this implementation.
// ---------------------------------------------------------------------------------------------

/**
 * The largest virtual size (and guest offset) we accept: 2^53 - 1, the largest integer a JavaScript
 * number holds exactly (Number.MAX_SAFE_INTEGER). Images beyond it are refused (see the README).
 */
export const MAX_VIRTUAL_SIZE = 2 ** 53 - 1;
/**
 * The end of the host bytes (of the image or its data file) we read or write: 2^53 - 1. Node's file
 * calls refuse positions past Number.MAX_SAFE_INTEGER, and offsets must stay exact JS numbers. The
 * spec lets metadata name host offsets up to 2^56; a table entry pointing past this is refused as
 * corrupt (src/format/host-offset.ts) before any I/O.
 */
export const MAX_HOST_OFFSET = 2 ** 53 - 1;
/** Backing chains deeper than this are refused: a loop, or a hostile chain. */
export const MAX_BACKING_DEPTH = 32;
/** `create -o preallocation=metadata` above this many guest clusters is refused: the whole plan is held in memory. */
export const MAX_PREALLOC_CLUSTERS = 2 ** 24;
/**
 * `check -r` grows a file (as QEMU does) to take in a refcount block that lies past its end, but
 * by at most 1 GiB: a hostile table entry could otherwise ask for exabytes.
 */
export const MAX_CHECK_GROWTH_BYTES = 1 * GiB;
/**
 * `check`'s in-memory refcount table grows to at most 2^31 counters (8 GiB of 32-bit counters):
 * the file has at most {@link MAX_CHECK_CLUSTERS} clusters, and repairs add only a few.
 */
export const MAX_CHECK_COUNTERS = 2 ** 31;

// ---------------------------------------------------------------------------------------------
// QEMU's integer limits on arguments and requests.
// ---------------------------------------------------------------------------------------------

/** C's INT_MAX: the bound of qemu-img's int options (bench), and of a single I/O call in QEMU. */
export const INT_MAX = 2 ** 31 - 1;
/** C's INT64_MAX: the largest size qemu-img and qemu-io accept as an argument (cvtnum). */
export const INT64_MAX = (1n << 63n) - 1n;
/**
 * The largest request qemu-io's read, write and discard accept and the block layer issues at once
 * (BDRV_REQUEST_MAX_BYTES): INT_MAX rounded down to whole 512-byte sectors, 2147483136.
 */
export const MAX_REQUEST_BYTES = INT_MAX - (INT_MAX % 512);
/**
 * Rounds of find-a-free-run, create-its-refcount-blocks an allocation may take: each round creates
 * what the run needs, so the next finds it; more rounds mean the refcount structure does not keep
 * what is written to it (a corrupt image), and the allocation fails instead of looping for ever.
 */
export const MAX_ALLOCATION_ROUNDS = 8;
/** The largest length of a block device (BDRV_MAX_LENGTH: 2^63 - 2^30): `create` refuses larger images, as QEMU's resize does. */
export const MAX_DEVICE_LENGTH = (1n << 63n) - (1n << 30n);
/** QEMU refuses to check files of more than INT_MAX clusters (qcow2_check_refcounts). */
export const MAX_CHECK_CLUSTERS = INT_MAX;

// ---------------------------------------------------------------------------------------------
// Memory budgets: how much one cache or one loop holds at a time, whatever the image's size.
// ---------------------------------------------------------------------------------------------

/**
 * The most L2 cache the optimized engine takes unless told otherwise (QEMU's default l2-cache-size
 * on Linux, DEFAULT_L2_CACHE_MAX_SIZE: maps 256 GiB with 64 KiB clusters). An image that needs less
 * to be mapped whole gets what it needs (defaultL2CacheBytes, src/optimized/open.ts), as in QEMU.
 */
export const DEFAULT_L2_CACHE_MAX_BYTES = 32 * MiB;
/**
 * The optimized engine's refcount block cache unless told otherwise: four 64 KiB blocks, QEMU's
 * default of four clusters (MIN_REFCOUNT_CACHE_SIZE) at the default cluster size.
 */
export const DEFAULT_REFCOUNT_CACHE_BYTES = 256 * KiB;
/** Refcount blocks `check` keeps in memory at once: at most 64 MiB with 2 MiB clusters. */
export const CHECK_REFCOUNT_BLOCK_CACHE = 32;
/** L1 and bitmap table entries `check` reads at a time: 64 KiB of 8-byte entries. */
export const CHECK_TABLE_WINDOW_ENTRIES = 8192;
/** The most an in-memory file (src/io/memory-file.ts: tests, the fuzzer) grows to; a write past it fails like one past a full disk. */
export const MEMORY_FILE_MAX_BYTES = 2 * GiB;
/** Bytes copied (convert) or compared (compare) per read. */
export const COPY_CHUNK_BYTES = 1 * MiB;
/** Guest bytes `rebase` compares between the old and the new backing file per step (qemu-img's IO_BUF_SIZE). */
export const REBASE_CHUNK_BYTES = 2 * MiB;
/** The largest buffer of zeroes written in one call where zeroes must be written explicitly. */
export const ZERO_CHUNK_BYTES = 1 * MiB;
/** Consecutive clusters `create` gathers into one write (preallocated metadata). */
export const CREATE_WRITE_BATCH_BYTES = 8 * MiB;
/**
 * Guest bytes whose block status (extents) is asked for at once: qemu-img map's chunk of 1 GiB
 * (img_map), also used by convert; a map over small clusters asks for less (64 Ki clusters).
 */
export const BLOCK_STATUS_CHUNK_BYTES = 1 * GiB;
/** Clusters of block status asked for at once when clusters are small (64 Ki clusters). */
export const BLOCK_STATUS_CHUNK_CLUSTERS = 65536;

// ---------------------------------------------------------------------------------------------
// Serving: the NBD server (src/nbd/) and the request core it shares with the ublk server (src/serve/).
// Each bound keeps one client (hostile, broken or just slow) from making the server hold memory
// or time without limit; the server's total is these times the connections it takes (`-e N`).
// ---------------------------------------------------------------------------------------------

/**
 * The largest read, write or cache request a server takes: 32 MiB. The NBD spec says a length
 * under 2^25 SHOULD NOT be deemed a denial of service and that clients desiring interoperability
 * keep reads and writes to it; qemu-nbd's largest buffer (NBD_MAX_BUFFER_SIZE) is the same. We
 * advertise it as the maximum block size, and it is the most one request's payload may hold in
 * memory. A larger write payload closes the connection (it cannot be skipped cheaply); a larger
 * read fails with EINVAL.
 */
export const MAX_SERVE_REQUEST_BYTES = 32 * MiB;
/**
 * Requests of one connection in flight at once. When reached, the server stops reading requests
 * from that client until one completes: a client cannot queue work without bound. 64 keeps fio's
 * and qemu's deepest usual queues (16-64) busy on the engine.
 */
export const SERVE_MAX_REQUESTS_IN_FLIGHT = 64;
/**
 * Payload bytes (write data received, read data to send) of one connection in flight before the
 * server stops reading its requests: one largest request more may arrive, so a connection holds
 * at most about twice {@link MAX_SERVE_REQUEST_BYTES} of request data.
 */
export const SERVE_MAX_BYTES_IN_FLIGHT = 32 * MiB;
/**
 * Reply bytes queued on one connection's socket (not yet taken by the kernel) above which the
 * server reads no new requests from it: a client that stops reading its replies stops being
 * served instead of making the server buffer them.
 */
export const SERVE_WRITE_HIGH_WATER = 4 * MiB;
/** Replies sent in one turn of the event loop are copied into one buffer up to this many bytes. */
export const SERVE_COALESCE_BYTES = 256 * KiB;
/** ... when their parts average at most this many bytes (4 KiB reads: a 20-byte head and the data). */
export const SERVE_COALESCE_PART_BYTES = 8 * KiB;
/**
 * NBD structured reads up to this length are split into data and hole by their bytes (all zeros:
 * one hole chunk), without a block-status lookup; longer ones ask the engine where the holes are.
 * A second lookup per small random read cost more than the read itself.
 */
export const SPARSE_READ_BY_STATUS_MIN = 64 * KiB + 1;
/** Request bytes read ahead from one socket before it is paused (TCP then pushes back on the client). */
export const SERVE_READ_AHEAD_BYTES = 1 * MiB;
/**
 * The largest NBD option payload the handshake reads: 64 KiB, far above what any option needs
 * (export names and meta context queries are strings of at most 4096 bytes, the spec's limit).
 * A larger one is read and dropped in bounded chunks, and answered NBD_REP_ERR_TOO_BIG.
 */
export const NBD_MAX_OPTION_BYTES = 64 * KiB;
/** The spec's limit on any NBD string (export names, descriptions, queries, error messages). */
export const NBD_MAX_STRING_BYTES = 4096;
/**
 * Seconds a client has to finish the handshake before it is disconnected: qemu-nbd's default
 * (its --handshake-limit, 10 s). Idle or half-sent handshakes cannot hold connections for ever.
 */
export const NBD_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Block status descriptors in one NBD reply chunk (per metadata context): 64 Ki, a 512 KiB
 * chunk. The spec lets the server describe less than was asked; the client asks again from where
 * the reply stopped.
 */
export const NBD_MAX_STATUS_EXTENTS = 65536;

// ---------------------------------------------------------------------------------------------
// LUKS key slots (an encrypted image's header is untrusted input: its PBKDF2 iteration counts set
// how long unlocking takes). QEMU caps nothing.
// ---------------------------------------------------------------------------------------------

/**
 * The most PBKDF2 iterations we run for one key slot or for the master-key digest: 2^25 (33.5
 * million). `qemu-img create` picks iterations to fill encrypt.iter-time (2000 ms by default): on
 * the 2-core build machine that made 7.3 million slot iterations with SHA-256 (1.8 million for the
 * digest); a machine 4 times faster still fits. At about 3.6 million SHA-256 iterations a second
 * here, the cap bounds one slot to about 10 s, and a hostile image (8 active slots) to about 80 s.
 */
export const MAX_LUKS_ITERATIONS = 2 ** 25;
/** LUKS1 always splits a key into 4000 stripes (QEMU refuses any other number). */
export const LUKS_STRIPES = 4000;
/** The largest master key: 64 bytes (AES-256 in XTS mode, two keys). */
export const MAX_LUKS_KEY_BYTES = 64;

/** The longest backing format name QEMU opens (its 16-byte buffer, NUL included): a longer extension is refused. */
export const MAX_BACKING_FORMAT_BYTES = 15;
