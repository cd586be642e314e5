/**
 * What the shared QCOW2 semantics (this folder) run over: the state both engines keep of an open
 * image, and the small store interface through which they reach its metadata. The reference
 * engine's store reads every entry from the disk and writes it through; the optimized engine's
 * keeps tables in memory and caches and orders its writes. The rules themselves are written once,
 * here, over this interface.
 */
import type { BlockDevice } from '../engine/types.js';
import type { HeaderExtension } from '../format/extensions.js';
import type { Geometry } from '../format/geometry.js';
import type { Header } from '../format/header.js';
import type { SnapshotEntry } from '../format/snapshot.js';
import type { Features } from '../format/validate.js';
import type { BlockFile, WriteTag } from '../io/block-file.js';
import type { BitmapDirectoryEntry } from '../format/bitmap.js';
import type { Mapping, NewL2Entry } from './mapping.js';

/** A file that remembers the first metadata write or flush that failed (engine/stopped.ts). */
export interface GuardedFile extends BlockFile {
  readonly failure: Error | undefined;
}

/** Where the image and its data file were opened from (undefined: not opened by path, e.g. memory files). */import type { SectorCipher } from '../crypto/luks-cipher.js';

export interface FilePaths {
  image: string | undefined;
  dataFile: string | undefined;
}

export interface Qcow2State {
  paths: FilePaths;
  /** The image file, behind the engine's write-ordering layer. */
  file: GuardedFile;
  /** External data file, when the image has one; guest clusters live there at their guest offset. */
  dataFile: GuardedFile | undefined;
  header: Header;
  extensions: HeaderExtension[];
  backingName: string | undefined;
  geometry: Geometry;
  features: Features;
  backing: BlockDevice | undefined;
  readOnly: boolean;
  /** The image has enabled ('auto') persistent bitmaps that are consistent: snapshots cannot be applied. */
  activeBitmaps: boolean;
  /** The persistent bitmaps, once loaded to be kept through changes (dirty-bitmaps.ts). */
  bitmaps?: TrackedBitmaps;
  /** Bytes the snapshot table takes (entries and their padding); follows every table rewrite. */
  snapshotTableBytes: number;
  /** Lowest cluster index that may be free; only a search hint, never a statement about refcounts. */
  freeHint: number;
  /** Refcounts may be wrong (an update under the dirty bit stopped half way): close keeps the bit. */
  keepDirty: boolean;
  /** Refcount updates may lag behind the L2 tables under the dirty bit (lazy refcounts in force). */
  lazyRefcounts: boolean;
  store: MetadataStore;
  /** A LUKS image's payload cipher (unlocked at open): guest data is stored encrypted (crypt-data.ts). */
  crypto: SectorCipher | undefined;
}

/** A persistent bitmap kept through changes (dirty-bitmaps.ts). */
export interface TrackedBitmap {
  /** The directory entry as loaded (or as `qcow2 bitmap` made it), in_use as it was then. */
  entry: BitmapDirectoryEntry;
  /** One bit per granule; undefined for a bitmap that was in_use when loaded (kept as it is). */
  bits: Uint8Array | undefined;
  /** The bits or the entry differ from what the stored table holds: close stores a new one. */
  changed: boolean;
  /** What the stored bitmap owns (its table and data clusters), freed once a new one is stored. */
  owned: { offset: number; length: number }[];
}

/** The image's persistent bitmaps, loaded to be kept through changes (dirty-bitmaps.ts). */
export interface TrackedBitmaps {
  list: TrackedBitmap[];
  /** in_use is set on disk (or bitmaps were added to an image without any): close must store them. */
  inUse: boolean;
  /** The list itself changed (a bitmap added or removed): close writes a new directory. */
  listChanged: boolean;
  /** What removed bitmaps owned, freed once the directory without them is stored. */
  removed: { offset: number; length: number }[];
}

export interface L1Slot {
  l2Offset: number;
  copied: boolean;
}

/** How one engine reads and writes the image's metadata. Offsets are image-file bytes. */
export interface MetadataStore {
  /** Active L1 entry `index` (below header.l1Size), as stored; the caller checks alignment. */
  l1Entry(index: number): Promise<L1Slot>;
  /** Sets an active L1 entry (written through). */
  setL1Entry(index: number, l2Offset: number, copied: boolean): Promise<void>;
  /** The active L1 table encoded, zero padded to `bytes`. */
  activeL1Bytes(bytes: number): Promise<Uint8Array>;
  /** Overwrites the active L1 table in place with `table` (header.l1Size entries). */
  replaceActiveL1(table: Uint8Array): Promise<void>;
  /** The header now names a moved, larger active L1 table whose new entries are 0. */
  activeL1Moved(): void;
  /** The L2 table offsets of any L1 table on disk (0 where unallocated). */
  readL1Table(offset: number, entries: number): Promise<number[]>;

  /**
   * Entry `index` of the L2 table at `l2`, decoded (invalid entries as `invalid`). `forStatus`:
   * for block status, which reports entries as they are (data past the end of the file included,
   * as QEMU's block status does) rather than refusing what a data request would refuse.
   */
  l2Entry(l2: number, index: number, forStatus?: boolean): Promise<Mapping>;
  /** Entries `first` .. `first + count - 1` of the L2 table at `l2`, decoded as l2Entry does. */
  l2Entries(l2: number, first: number, count: number, forStatus?: boolean): Promise<Mapping[]>;
  setL2Entry(l2: number, index: number, entry: NewL2Entry): Promise<void>;
  /** Every entry of the L2 table at `l2`. */
  l2Table(l2: number): Promise<Mapping[]>;
  /** Writes a new L2 table at `offset`: a copy of the table at `from`, or empty when `from` is 0. */
  newL2Table(offset: number, from: number): Promise<void>;

  /** Number of entries of the refcount table. */
  refcountTableEntries(): number;
  /** Offset of refcount block `index`, 0 when it does not exist; refuses an invalid one. */
  refcountBlock(index: number): Promise<number>;
  setRefcountTableEntry(index: number, blockOffset: number): Promise<void>;
  /** The header now names a refcount table, just written, holding these block offsets. */
  refcountTableReplaced(offsets: number[]): void;
  getRefcount(cluster: number): Promise<number>;
  /**
   * What the image file's cluster holding `hostOffset` is, if this store knows it to be metadata
   * (the optimized engine keeps that map for its overlap check; the reference engine knows none).
   * The allocator refuses to hand out such a cluster, whatever its refcount says.
   */
  knownMetadataAt?(hostOffset: number): string | undefined;
  /** Sets a refcount in the existing block at `block`. */
  putRefcount(block: number, cluster: number, value: number): Promise<void>;
  /** Index of the last cluster with a nonzero refcount in the block at `block`, -1 when none. */
  lastUsedInBlock(block: number): Promise<number>;
  /** Writes a new refcount block (before the table entry that will point at it). */
  newRefcountBlock(offset: number, block: Uint8Array): Promise<void>;
  /** Called before a refcount changes by `delta` (write ordering, lazy refcounts). */
  beforeRefcountChange(delta: number): Promise<void>;
  /** Called after a cluster's refcount went from `old` to `value`. */
  afterRefcountChange(cluster: number, old: number, value: number): void;
  /** Before every refcount block is rewritten from counted references (rebuild.ts). */
  beforeRefcountRewrite(): Promise<void>;

  /** A write of the L1 table, the refcount table, the snapshot table or the header. */
  writeThrough(offset: number, bytes: Uint8Array, tag: WriteTag): Promise<void>;

  readSnapshots(): Promise<SnapshotEntry[]>;
  /** Directory entries of the bitmaps extension: each bitmap's table place. */
  readBitmapDirectory(offset: number, bytes: number, count: number): Promise<{ name: string; tableOffset: number; tableEntries: number }[]>;
  /** Host offsets of a bitmap table's entries (0: none). */
  readBitmapTable(offset: number, entries: number): Promise<number[]>;

  /** Guest reads and writes for the zero-write rules (the engine's locks are held). */
  readGuest(offset: number, length: number): Promise<Uint8Array>;
  writeGuest(offset: number, data: Uint8Array): Promise<void>;
}

/** The error that stopped this engine from changing the image, if a metadata write or flush failed. */
export function poisoned(st: Qcow2State): Error | undefined {
  return st.file.failure ?? st.dataFile?.failure;
}
