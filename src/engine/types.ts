/**
 * What every engine offers (the reference engine, the optimized engine, and the raw-file adapter
 * used for raw backing files and `-f raw`). Offsets and lengths are guest bytes.
 */
import type { BlockFile } from '../io/block-file.js';

/** How one layer (this image only, not its backing chain) maps a guest range. */
export type ExtentKind =
  /** Guest data stored in this layer, at `hostOffset` of `file`. */
  | 'data'
  /** Reads as zeros because this layer says so (zero flag / zero subcluster); may have a host offset. */
  | 'zero'
  /** Compressed cluster in this layer (no usable host offset). */
  | 'compressed'
  /** Not allocated in this layer: reads from the backing file, or zeros without one. */
  | 'unallocated';

export interface Extent {
  /** Guest offset where this extent starts. */
  start: number;
  length: number;
  kind: ExtentKind;
  /** Host offset of `start` when the layer has one for it (data, and preallocated zero). */
  hostOffset?: number;
  /** Which file `hostOffset` is in: the image file itself or its external data file. */
  file?: 'image' | 'data-file';
}

/** Options every changing request takes. */
export interface WriteOptions {
  /** Force unit access: the request's data (and what is needed to read it back) is durable when it returns. */
  fua?: boolean;
}

export interface WriteZeroesOptions extends WriteOptions {
  /**
   * May deallocate (qemu-io `write -z -u`, NBD without NO_HOLE); otherwise a preallocated cluster
   * keeps its host space.
   */
  unmap?: boolean;
  /**
   * Fast or not at all (NBD FAST_ZERO): when the range cannot be zeroed without writing zero bytes,
   * fail with an 'unsupported' error before changing anything.
   */
  fast?: boolean;
}

/**
 * What a device can do, said by the device (servers advertise these to their clients; nothing is
 * guessed from which methods an object has).
 */
export interface DeviceCapabilities {
  /** discard() frees storage; false: it is accepted and does nothing but may read back as before. */
  readonly discard: boolean;
  /** writeZeroes({ unmap: true }) may deallocate. */
  readonly zeroUnmap: boolean;
  /** writeZeroes({ fast: true }) can succeed on aligned ranges (zero flags, or a file's ZERO_RANGE). */
  readonly fastZero: boolean;
  /** Compressed writes (qcow2 only). */
  readonly compressedWrites: boolean;
  /** Internal snapshots (qcow2 only). */
  readonly snapshots: boolean;
}

/** How the whole chain below a device answers for a guest range (block status). */
export interface StatusExtent {
  start: number;
  length: number;
  /** Reads as zeros. */
  zero: boolean;
  /** Holds stored data (not only a zero flag): NBD base:allocation's opposite of a hole. */
  data: boolean;
  /**
   * Which layer answers: 1 = the device itself, 2 = its backing file, …; 0 = no layer (reads as
   * zeros). QEMU's qemu:allocation-depth.
   */
  depth: number;
}

export interface BlockDevice {
  readonly format: 'raw' | 'qcow2';
  readonly virtualSize: number;
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;
  /** The next layer down (a qcow2 image's backing file), if there is one and it was opened. */
  readonly backing: BlockDevice | undefined;
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads [offset, offset + target.byteLength) into `target`, without allocating a result. Every
   * byte of `target` is written (zeros included): callers may pass memory that is not zeroed.
   */
  readInto(offset: number, target: Uint8Array): Promise<void>;
  write(offset: number, data: Uint8Array, opts?: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, opts?: WriteZeroesOptions): Promise<void>;
  discard(offset: number, length: number, opts?: WriteOptions): Promise<void>;
  flush(): Promise<void>;
  /** Grows (or, where allowed, shrinks) the virtual disk. */
  resize(newSize: number): Promise<void>;
  /** The extents of this layer covering [offset, offset + length), in order, without gaps. */
  mapExtents(offset: number, length: number): Promise<Extent[]>;
  /** What the whole chain says about [offset, offset + length), in order, without gaps. */
  blockStatus(offset: number, length: number): Promise<StatusExtent[]>;
  close(): Promise<void>;
}

export interface SnapshotInfo {
  id: string;
  name: string;
  vmStateSize: number;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: bigint;
  /** -1n when icount was not recorded. */
  icount: bigint;
  diskSize: number;
}

/** A qcow2 image as an engine sees it. */
/** A run of equal bits of a persistent bitmap, in guest bytes. */
export interface DirtyRun {
  length: number;
  /** The bit is set: the range was written while the bitmap was enabled. */
  dirty: boolean;
}

/** A persistent dirty-tracking bitmap stored in the image, read-only (qemu-nbd's `-B`). */
export interface PersistentBitmap {
  readonly name: string;
  /** Guest bytes per bit. */
  readonly granularity: number;
  /** The bitmap has the 'auto' flag: it tracks writes while the image is in use. */
  readonly enabled: boolean;
  /** From `offset`, runs of equal bits covering at most `length` bytes (less at the disk's end), at most `maxRuns` of them. */
  runs(offset: number, length: number, maxRuns: number): Promise<DirtyRun[]>;
}

/**
 * How a qcow2 device fills the area a resize adds: 'off' leaves it unallocated (with data_file_raw:
 * 'metadata', as QEMU); 'metadata' maps it to new host clusters; 'falloc' and 'full' also allocate
 * those clusters' storage (fallocate, or zeros written), as qcow2_co_truncate does.
 */
export interface ResizeOptions {
  preallocation?: 'off' | 'metadata' | 'falloc' | 'full';
}

export interface Qcow2Device extends BlockDevice {
  readonly format: 'qcow2';
  /** As BlockDevice.resize, with preallocation of the area added (qemu-img resize --preallocation). */
  resize(newSize: number, opts?: ResizeOptions): Promise<void>;
  readonly clusterSize: number;
  /** The image file's path, when it was opened by one. */
  readonly path: string | undefined;
  /** Guest data is stored encrypted (LUKS): host offsets of data say nothing a reader of the file could use. */
  readonly encrypted: boolean;
  /** The backing file name stored in the image. */
  readonly backingName: string | undefined;
  /** The external data file: the name stored in the image and the path it was opened at. */
  readonly dataFile: { name: string; path: string | undefined } | undefined;
  /** Refcount of host cluster `index` of the image file (for inspection: qemu-img map's heuristics). */
  hostRefcount(index: number): Promise<number>;
  /** Compressed write of whole clusters (qemu-io `write -c`). */
  writeCompressed(offset: number, data: Uint8Array): Promise<void>;
  /** Leaves every cluster of the active disk unallocated: the image reads as its backing file (QEMU's bdrv_make_empty). */
  makeEmpty(): Promise<void>;
  listSnapshots(): Promise<SnapshotInfo[]>;
  createSnapshot(name: string): Promise<SnapshotInfo>;
  /** Makes the snapshot (by id or name) the active state. */
  applySnapshot(idOrName: string): Promise<void>;
  deleteSnapshot(idOrName: string): Promise<void>;
  /** Persistent bitmap `name`, checked, for reading. */
  readBitmap(name: string): Promise<PersistentBitmap>;
  /**
   * Changes the persistent bitmaps (qemu-img bitmap), in order; the first that fails stops the rest
   * (those before it stay made). They are stored when the device closes.
   */
  editBitmaps(edits: readonly BitmapEdit[]): Promise<void>;
  /**
   * Makes the image name another backing file (`name`; undefined: none) and backing format
   * (`format`; undefined: no format extension), as `qemu-img rebase` ends: everything written
   * before is made durable first, then the header is rewritten in one write. Only the stored
   * names change: the device goes on reading through the chain it was opened with (reopen it to
   * read through the new one), and the guest content over the new backing file is the caller's.
   */
  changeBackingFile(name: string | undefined, format: string | undefined): Promise<void>;
}

/** One change to the persistent bitmaps, as qemu-img bitmap's operations. */
export type BitmapEdit =
  /** A new, empty bitmap; granularity in bytes (default: the cluster size, at least 4 KiB); enabled unless `disabled`. */
  | { op: 'add'; name: string; granularity?: number; disabled?: boolean }
  | { op: 'remove' | 'clear' | 'enable' | 'disable'; name: string }
  /** Sets in bitmap `name` every granule `source` has dirty (`sourceSize`: the source disk's size). */
  | { op: 'merge'; name: string; source: PersistentBitmap; sourceSize: number };

export interface OpenOptions {
  readOnly?: boolean;
  /**
   * Policy for untrusted images: when false, backing and data file names stored in the image are
   * never opened (an image that needs one fails to open with a typed 'unsupported' error).
   */
  followFileNames?: boolean;
  /** How file I/O is done: synchronous pread/pwrite (default) or libuv's thread pool. */
  io?: 'sync' | 'threads';
  /** Flushes do nothing (QEMU's cache.no-flush: `-t unsafe`, qemu-img convert's default). */
  noFlush?: boolean;
  /**
   * Worker threads for compressed clusters (optimized engine): undefined uses the process-wide
   * pool (one per core, at most 4); 0 (de)compresses on the calling thread.
   */
  compressionThreads?: number;
  /**
   * Open the image as it was at this internal snapshot instead of its active state; needs
   * readOnly. Applies to the top image only, not its backing chain.
   */
  snapshot?: SnapshotRef;
  /** Open this backing instead of the one the image names (qemu's `-b` at open time). */
  backingOverride?: { path: string; format: 'raw' | 'qcow2' } | null;
  /**
   * Puts a layer between the engine and the image file, and its external data file (tests:
   * delays, recording, fault injection). Not applied to backing files.
   */
  wrapFile?: (file: BlockFile, role: 'image' | 'data-file') => BlockFile;
  /**
   * The passphrase of a LUKS-encrypted image (the data of the secret that QEMU's
   * encrypt.key-secret names). Applies to the top image only, as in QEMU. The caller zeroes it.
   */
  keySecret?: Uint8Array;
  /**
   * The passphrases of the backing chain's encrypted images, nearest first (QEMU's
   * backing.encrypt.key-secret, backing.backing.encrypt.key-secret, …). The caller zeroes them.
   */
  backingKeys?: readonly (Uint8Array | undefined)[];
}

/** A qcow2 device, by what the device says it is. */
export function isQcow2(device: BlockDevice): device is Qcow2Device {
  return device.format === 'qcow2';
}

/**
 * An internal snapshot to open: an ID or a name (IDs first, as QEMU's
 * bdrv_snapshot_load_tmp_by_id_or_name), or the one whose ID and name are those given (QEMU's
 * `snapshot.id=ID,snapshot.name=NAME`, either left out).
 */
export type SnapshotRef = string | { id?: string; name?: string };
