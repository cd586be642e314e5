/**
 * Where `qemu-img create -f qcow2` (QEMU 7.2) puts every byte, reproduced by replaying what QEMU
 * does, in QEMU's order, against an in-memory model of the file:
 *
 *  1. qcow2_co_create writes a minimal header (cluster 0) and a refcount table (cluster 1) whose
 *     entry 0 points at an empty refcount block (cluster 2), then opens the image and allocates
 *     clusters 0-2 through the normal allocator.
 *  2. qcow2_update_header rewrites cluster 0 with the header extensions: external data file name,
 *     then the feature name table (v3 with clusters above 4 KiB only), then the end marker.
 *  3. The resize to the virtual size grows the L1 table to exactly the entries needed
 *     (qcow2_grow_l1_table, exact): it is allocated by the allocator and written with exactly
 *     8 * l1_size bytes, so an image without preallocation ends inside the L1 cluster.
 *     - preallocation=metadata (preallocate_co): for each L2 slice, an L2 table is allocated, then
 *       the data clusters of the slice, then the next L2 table, ... Data clusters are never written,
 *       except the copy-on-write of a partial last (sub)cluster, which writes zeros up to the
 *       (sub)cluster end. L2 entries are offset | COPIED (no zero flag; with extended L2 the bitmap
 *       stays 0: allocated, subclusters unallocated). The file (or external data file) is then
 *       extended to the end of the last allocation.
 *     - With an external data file and no preallocation, the data file is truncated to the size.
 *  4. A backing file: qcow2_update_header again, with the backing format extension first and the
 *     backing file name right after the end marker.
 *
 * The allocator (qcow2-refcount.c) is replayed faithfully: the free-cluster cursor, refcount blocks
 * that describe themselves, -EAGAIN restarts with their undo, and refcount table growth
 * (qcow2_refcount_area, 50 % headroom, the old table freed: its clusters keep their stale bytes,
 * unreferenced or reused by later allocations, exactly as QEMU leaves them).
 */
import { unsupported, usage } from '../errors.js';
import { view, writeU64 } from '../format/bytes.js';
import { CRYPT_LUKS, CRYPT_NONE, SUBCLUSTERS_PER_CLUSTER } from '../format/constants.js';
import {
  COMPAT_LAZY_REFCOUNTS,
  AUTOCLEAR_DATA_FILE_RAW,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTL2,
  COMPRESSION_DEFLATE,
  COMPRESSION_ZSTD,
} from '../format/constants.js';
import { encodeExtensions, type HeaderExtension, QEMU_FEATURE_TABLE } from '../format/extensions.js';
import { encodeHeader, type Header } from '../format/header.js';
import { encodeL1Table } from '../format/l1.js';
import { encodeL2Entry, encodeStandardDescriptor } from '../format/l2.js';
import { encodeRefcountTableEntry, readRefcount, refcountMetadataClusters, writeRefcount } from '../format/refcount.js';
import { INT_MAX, MAX_L1_BYTES, MAX_PREALLOC_CLUSTERS, MAX_REFCOUNT_TABLE_BYTES, MAX_REQUEST_BYTES } from '../limits.js';
import type { ResolvedCreateOptions } from './options.js';

/** The file contents QEMU leaves behind. */
export interface ImagePlan {
  clusterSize: number;
  /** Contents of the image file by cluster index; clusters not in the map are zero. */
  clusters: Map<number, Uint8Array>;
  /** Final length of the image file in bytes. */
  fileLength: number;
  /** Final length of the external data file, if there is one. */
  dataFileLength: number | undefined;
  /**
   * preallocation=falloc or full: the range of the image file (or of the data file) whose storage
   * is allocated (fallocate) or written with zeros, as QEMU's truncate of that file does.
   */
  allocated: { file: 'image' | 'data'; offset: number; length: number; mode: 'falloc' | 'full' } | undefined;
  /** The final header (as in cluster 0). */
  header: Header;
}

const INV = -1;

type Again = 'again';
const AGAIN: Again = 'again';

function tooLarge(): Error {
  return usage("The image size is too large for file format 'qcow2' (try using a larger cluster size)");
}

/** Sparse bytes of a file, kept per cluster, and how long the file is. */
class FileModel {
  readonly clusters = new Map<number, Uint8Array>();
  length = 0;

  constructor(readonly clusterSize: number) {}

  cluster(index: number): Uint8Array {
    let buf = this.clusters.get(index);
    if (buf === undefined) {
      buf = new Uint8Array(this.clusterSize);
      this.clusters.set(index, buf);
    }
    return buf;
  }

  write(offset: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.byteLength) {
      const at = offset + done;
      const index = Math.floor(at / this.clusterSize);
      const within = at - index * this.clusterSize;
      const n = Math.min(this.clusterSize - within, bytes.byteLength - done);
      this.cluster(index).set(bytes.subarray(done, done + n), within);
      done += n;
    }
    this.extend(offset + bytes.byteLength);
  }

  /** A whole cluster written (as a cache flush does): its buffer, zeroed when asked. */
  writeCluster(index: number, zero: boolean): Uint8Array {
    const buf = this.cluster(index);
    if (zero) buf.fill(0);
    this.extend((index + 1) * this.clusterSize);
    return buf;
  }

  extend(end: number): void {
    if (end > this.length) this.length = end;
  }
}

interface L2Meta {
  allocOffset: number;
  /** Guest offset of the first cluster. */
  offset: number;
  nbClusters: number;
  cowStart: { offset: number; bytes: number };
  cowEnd: { offset: number; bytes: number };
}

/** Replays QEMU's image creation; see the file comment. */
class QemuCreate {
  readonly cs: number;
  readonly cb: number;
  readonly order: number;
  /** Refcounts per refcount block, as a power of two. */
  readonly rbBits: number;
  readonly rbSize: number;
  readonly refcountMax: bigint;
  readonly l2Entries: number;
  readonly l2EntryBytes: number;
  readonly subclusterSize: number;
  readonly file: FileModel;
  readonly hasDataFile: boolean;
  dataFileLength = 0;
  allocated: ImagePlan['allocated'];

  // In-memory state of the open image (BDRVQcow2State).
  reftable: number[] = [];
  reftableOffset = 0;
  reftableSize = 0;
  maxReftableIndex = 0;
  freeClusterIndex = 0;
  l1: number[] = [];
  l1Offset = 0;

  /** Where the LUKS area went (qcow2_crypto_hdr_init_func), once allocated. */
  cryptoHeader: { offset: number; length: number } | undefined;

  constructor(
    readonly o: ResolvedCreateOptions,
    readonly luksArea?: Uint8Array,
  ) {
    this.cs = o.clusterSize;
    this.cb = o.clusterBits;
    this.order = o.refcountOrder;
    this.rbBits = this.cb + 3 - this.order;
    this.rbSize = 2 ** this.rbBits;
    this.refcountMax = (1n << BigInt(o.refcountBits)) - 1n;
    this.l2EntryBytes = o.extendedL2 ? 16 : 8;
    this.l2Entries = this.cs / this.l2EntryBytes;
    this.subclusterSize = o.extendedL2 ? this.cs / SUBCLUSTERS_PER_CLUSTER : this.cs;
    this.file = new FileModel(this.cs);
    this.hasDataFile = o.dataFile !== undefined;
  }

  run(): ImagePlan {
    const { cs, o } = this;
    // qcow2_co_create: minimal header, then a refcount table whose entry 0 names cluster 2.
    this.file.write(0, new Uint8Array(cs));
    const table = new Uint8Array(2 * cs);
    writeU64(view(table), 0, BigInt(2 * cs));
    this.file.write(cs, table);
    // Open it (qcow2_refcount_init) and allocate the header and refcount clusters.
    this.reftableOffset = cs;
    this.reftableSize = cs / 8;
    this.reftable = new Array<number>(this.reftableSize).fill(0);
    this.reftable[0] = 2 * cs;
    this.updateMaxReftableIndex();
    if (this.allocClusters(3 * cs) !== 0) throw new Error('first cluster in an empty image is already in use');
    // qcow2_update_header rewrites cluster 0 (rendered at the end from the final state).
    // The resize to the virtual size.
    const size = Number(o.size);
    const l2Coverage = cs * this.l2Entries;
    this.growL1(Number((o.size + BigInt(l2Coverage) - 1n) / BigInt(l2Coverage)));
    if (o.preallocation !== 'off') {
      const clusters = Math.ceil(size / cs);
      if (clusters > MAX_PREALLOC_CLUSTERS) {
        throw unsupported(`preallocation=${o.preallocation} of ${clusters} clusters is beyond this implementation's limit of ${MAX_PREALLOC_CLUSTERS}`);
      }
      if (o.preallocation === 'metadata' || this.hasDataFile) this.preallocate(0, size, o.preallocation);
      else this.preallocateFile(size, o.preallocation);
    } else if (this.hasDataFile) {
      this.dataFileLength = Math.max(this.dataFileLength, size);
    }
    // L1 entries were written one by one as L2 tables were allocated: the final table.
    if (this.l1.length > 0) {
      this.file.write(
        this.l1Offset,
        encodeL1Table(this.l1.map((l2Offset) => ({ l2Offset, copied: l2Offset !== 0, reservedLow: 0, reservedHigh: 0 }))),
      );
    }
    // Encryption is set up last (qcow2_set_up_encryption, after the resize and the backing file):
    // the LUKS area gets whole clusters from the allocator, zeroed, then its header and key material.
    if (this.luksArea !== undefined) {
      const clusterLen = Math.ceil(this.luksArea.byteLength / cs) * cs;
      const at = this.allocClusters(clusterLen);
      this.file.write(at, new Uint8Array(clusterLen));
      this.file.write(at, this.luksArea);
      this.cryptoHeader = { offset: at, length: this.luksArea.byteLength };
    }
    const header = this.header();
    const cluster0 = this.file.cluster(0);
    cluster0.fill(0);
    cluster0.set(this.headerArea(header));
    return {
      clusterSize: cs,
      clusters: this.file.clusters,
      fileLength: this.file.length,
      dataFileLength: this.hasDataFile ? this.dataFileLength : undefined,
      allocated: this.allocated,
      header,
    };
  }

  // --- header ---------------------------------------------------------------------------------

  header(): Header {
    const o = this.o;
    let incompat = 0n;
    if (this.hasDataFile) incompat |= INCOMPAT_DATA_FILE;
    if (o.compressionType === 'zstd') incompat |= INCOMPAT_COMPRESSION;
    if (o.extendedL2) incompat |= INCOMPAT_EXTL2;
    return {
      version: o.version,
      backingFileOffset: 0n,
      backingFileSize: 0,
      clusterBits: this.cb,
      size: o.size,
      cryptMethod: this.luksArea !== undefined ? CRYPT_LUKS : CRYPT_NONE,
      l1Size: this.l1.length,
      l1TableOffset: BigInt(this.l1Offset),
      refcountTableOffset: BigInt(this.reftableOffset),
      refcountTableClusters: this.reftableSize / (this.cs / 8),
      nbSnapshots: 0,
      snapshotsOffset: 0n,
      incompatibleFeatures: o.version === 3 ? incompat : 0n,
      compatibleFeatures: o.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n,
      autoclearFeatures: o.dataFileRaw ? AUTOCLEAR_DATA_FILE_RAW : 0n,
      refcountOrder: this.order,
      headerLength: o.version === 3 ? 112 : 72,
      compressionType: o.compressionType === 'zstd' ? COMPRESSION_ZSTD : COMPRESSION_DEFLATE,
      tail: new Uint8Array(7),
    };
  }

  /** Header, extensions, end marker and backing file name, as qcow2_update_header lays them out. */
  headerArea(header: Header): Uint8Array {
    const o = this.o;
    const extensions: HeaderExtension[] = [];
    if (o.backingFile !== undefined && o.backingFormat !== undefined) extensions.push({ kind: 'backing-format', name: o.backingFormat });
    if (o.dataFile !== undefined) extensions.push({ kind: 'data-file', name: o.dataFile });
    if (this.cryptoHeader) extensions.push({ kind: 'crypto-header', offset: BigInt(this.cryptoHeader.offset), length: BigInt(this.cryptoHeader.length) });
    if (o.version === 3 && this.cs > 4096) extensions.push({ kind: 'feature-table', entries: [...QEMU_FEATURE_TABLE] });
    const ext = encodeExtensions(extensions);
    const name = o.backingFile === undefined ? new Uint8Array(0) : new TextEncoder().encode(o.backingFile);
    if (o.backingFile !== undefined) {
      header.backingFileOffset = BigInt(header.headerLength + ext.byteLength);
      header.backingFileSize = name.byteLength;
    }
    const head = encodeHeader(header);
    const area = new Uint8Array(head.byteLength + ext.byteLength + name.byteLength);
    if (area.byteLength > this.cs) throw usage('Could not update qcow2 header: No space left on device');
    area.set(head, 0);
    area.set(ext, head.byteLength);
    area.set(name, head.byteLength + ext.byteLength);
    return area;
  }

  // --- refcounts (qcow2-refcount.c) -------------------------------------------------------------

  updateMaxReftableIndex(): void {
    let i = this.reftableSize - 1;
    while (i > 0 && (this.reftable[i] ?? 0) === 0) i--;
    this.maxReftableIndex = i;
  }

  getRefcount(clusterIndex: number): number {
    const ti = Math.floor(clusterIndex / this.rbSize);
    if (ti >= this.reftableSize) return 0;
    const block = this.reftable[ti] ?? 0;
    if (block === 0) return 0;
    return readRefcount(this.file.cluster(block / this.cs), clusterIndex % this.rbSize, this.order);
  }

  sameRefcountBlock(a: number, b: number): boolean {
    const span = this.cs * this.rbSize;
    return Math.floor(a / span) === Math.floor(b / span);
  }

  allocClustersNoref(size: number): number {
    const nb = Math.ceil(size / this.cs);
    retry: for (;;) {
      for (let i = 0; i < nb; i++) {
        const next = this.freeClusterIndex++;
        if (this.getRefcount(next) !== 0) continue retry;
      }
      return (this.freeClusterIndex - nb) * this.cs;
    }
  }

  allocClusters(size: number): number {
    for (;;) {
      const offset = this.allocClustersNoref(size);
      if (this.updateRefcount(offset, size, 1, false) !== AGAIN) return offset;
    }
  }

  allocClustersAt(offset: number, nb: number): number {
    for (;;) {
      let i = 0;
      const first = offset / this.cs;
      while (i < nb && this.getRefcount(first + i) === 0) i++;
      if (this.updateRefcount(offset, i * this.cs, 1, false) !== AGAIN) return i;
    }
  }

  freeClusters(offset: number, size: number): void {
    this.updateRefcount(offset, size, 1, true);
  }

  updateRefcount(offset: number, length: number, addend: number, decrease: boolean): Again | undefined {
    if (length <= 0) return undefined;
    const cs = this.cs;
    const start = Math.floor(offset / cs) * cs;
    const last = Math.floor((offset + length - 1) / cs) * cs;
    let oldTableIndex = -1;
    let block: Uint8Array | undefined;
    for (let clusterOffset = start; clusterOffset <= last; clusterOffset += cs) {
      const clusterIndex = clusterOffset / cs;
      const tableIndex = Math.floor(clusterIndex / this.rbSize);
      if (tableIndex !== oldTableIndex) {
        const r = this.allocRefcountBlock(clusterIndex);
        if (r === AGAIN) {
          // The caller restarts its search for free clusters, trying the same ones first; the
          // refcounts already raised in this call are undone.
          if (this.freeClusterIndex > start / cs) this.freeClusterIndex = start / cs;
          this.updateRefcount(offset, clusterOffset - offset, addend, !decrease);
          return AGAIN;
        }
        block = r;
      }
      oldTableIndex = tableIndex;
      if (block === undefined) throw new Error('no refcount block');
      const index = clusterIndex % this.rbSize;
      const before = BigInt(readRefcount(block, index, this.order));
      const after = decrease ? before - BigInt(addend) : before + BigInt(addend);
      if (after < 0n || after > this.refcountMax) throw new Error(`refcount of cluster ${clusterIndex} out of range`);
      if (after === 0n && clusterIndex < this.freeClusterIndex) this.freeClusterIndex = clusterIndex;
      writeRefcount(block, index, this.order, after);
    }
    return undefined;
  }

  allocRefcountBlock(clusterIndex: number): Uint8Array | Again {
    const cs = this.cs;
    const tableIndex = Math.floor(clusterIndex / this.rbSize);
    if (tableIndex < this.reftableSize) {
      const existing = this.reftable[tableIndex] ?? 0;
      if (existing !== 0) return this.file.cluster(existing / cs);
    }
    const newBlock = this.allocClustersNoref(cs);
    if (newBlock === 0) throw new Error('refusing to allocate a refcount block at offset 0');
    if (this.sameRefcountBlock(newBlock, clusterIndex * cs)) {
      // The block describes itself.
      const buf = this.file.writeCluster(newBlock / cs, true);
      writeRefcount(buf, (newBlock / cs) % this.rbSize, this.order, 1);
    } else {
      if (this.updateRefcount(newBlock, cs, 1, false) === AGAIN) return AGAIN;
      this.file.writeCluster(newBlock / cs, true);
    }
    if (tableIndex < this.reftableSize) {
      // Hook the block up in the table (an 8-byte write).
      const entry = new Uint8Array(8);
      encodeRefcountTableEntry(view(entry), 0, { blockOffset: newBlock, offsetHighBits: 0, reserved: 0 });
      this.file.write(this.reftableOffset + tableIndex * 8, entry);
      this.reftable[tableIndex] = newBlock;
      this.maxReftableIndex = Math.max(this.maxReftableIndex, tableIndex);
      return AGAIN;
    }
    // Grow the refcount table: new blocks and table at the end, describing themselves.
    const blocksUsed = Math.ceil(Math.max(clusterIndex + 1, newBlock / cs + 1) / this.rbSize);
    this.refcountArea(blocksUsed * this.rbSize * cs, 0, false, tableIndex, newBlock);
    return AGAIN;
  }

  /** qcow2_refcount_metadata_size: refcount blocks needed for `clusters` plus themselves. */
  refcountBlocksFor(clusters: number, generous: boolean): number {
    return Number(refcountMetadataClusters(BigInt(clusters), this.cs, this.order, generous).blocks);
  }

  refcountArea(startOffset: number, additionalClusters: number, exact: boolean, newIndex: number, newOffset: number): number {
    const cs = this.cs;
    const total = this.refcountBlocksFor(startOffset / cs + additionalClusters, !exact);
    if (total > MAX_REFCOUNT_TABLE_BYTES) throw tooLarge();
    const areaIndex = Math.floor(startOffset / cs / this.rbSize);
    let tableSize = exact ? total : total + Math.ceil(total / 2);
    tableSize = Math.ceil(tableSize / (cs / 8)) * (cs / 8);
    const tableClusters = (tableSize * 8) / cs;
    if (tableSize > MAX_REFCOUNT_TABLE_BYTES) throw tooLarge();
    const table = new Array<number>(tableSize).fill(0);
    const copy = tableSize > this.maxReftableIndex ? this.maxReftableIndex + 1 : tableSize;
    for (let i = 0; i < copy; i++) table[i] = this.reftable[i] ?? 0;
    if (newOffset !== 0) table[newIndex] = newOffset;
    let additional = 0;
    for (let i = areaIndex; i < total; i++) if ((table[i] ?? 0) === 0) additional++;
    const tableOffset = startOffset + additional * cs;
    const endOffset = tableOffset + tableClusters * cs;
    let blockOffset = startOffset;
    for (let i = areaIndex; i < total; i++) {
      let buf: Uint8Array;
      const existing = table[i] ?? 0;
      if (existing !== 0) {
        buf = this.file.cluster(existing / cs);
      } else {
        buf = this.file.writeCluster(blockOffset / cs, true);
        table[i] = blockOffset;
        blockOffset += cs;
      }
      const firstCovered = i * this.rbSize * cs;
      if (firstCovered < endOffset) {
        let j = firstCovered < startOffset ? (startOffset - firstCovered) / cs : 0;
        const end = Math.min((endOffset - firstCovered) / cs, this.rbSize);
        for (; j < end; j++) writeRefcount(buf, j, this.order, 1);
      }
    }
    const bytes = new Uint8Array(tableSize * 8);
    const dv = view(bytes);
    table.forEach((blockOffsetEntry, i) => encodeRefcountTableEntry(dv, i * 8, { blockOffset: blockOffsetEntry, offsetHighBits: 0, reserved: 0 }));
    this.file.write(tableOffset, bytes);
    const oldOffset = this.reftableOffset;
    const oldSize = this.reftableSize;
    this.reftable = table;
    this.reftableSize = tableSize;
    this.reftableOffset = tableOffset;
    this.updateMaxReftableIndex();
    this.freeClusters(oldOffset, oldSize * 8);
    return endOffset;
  }

  // --- L1 / L2 (qcow2-cluster.c) ----------------------------------------------------------------

  growL1(minSize: number): void {
    if (minSize <= this.l1.length) return;
    if (minSize > Math.floor(INT_MAX / 8) || minSize > MAX_L1_BYTES / 8) throw tooLarge();
    const bytes = minSize * 8;
    const offset = this.allocClusters(bytes);
    const table = new Uint8Array(bytes);
    this.file.write(offset, table);
    const old = this.l1;
    this.l1 = new Array<number>(minSize).fill(0);
    old.forEach((e, i) => (this.l1[i] = e));
    const oldOffset = this.l1Offset;
    this.l1Offset = offset;
    this.freeClusters(oldOffset, old.length * 8);
  }

  /** get_cluster_table: allocates the L2 table of a guest offset when there is none. */
  l2Table(guestOffset: number): Uint8Array {
    const l1Index = Math.floor(guestOffset / (this.cs * this.l2Entries));
    if (l1Index >= this.l1.length) throw new Error('guest offset beyond the L1 table');
    if ((this.l1[l1Index] ?? 0) === 0) {
      const offset = this.allocClusters(this.cs);
      if (offset === 0) throw new Error('refusing to allocate an L2 table at offset 0');
      this.file.writeCluster(offset / this.cs, true);
      this.l1[l1Index] = offset;
    }
    return this.file.cluster((this.l1[l1Index] ?? 0) / this.cs);
  }

  l2Index(guestOffset: number): number {
    return Math.floor(guestOffset / this.cs) % this.l2Entries;
  }

  entryIsFree(table: Uint8Array, index: number): boolean {
    const dv = view(table);
    const at = index * this.l2EntryBytes;
    return dv.getUint32(at) === 0 && dv.getUint32(at + 4) === 0;
  }

  /**
   * qcow2_co_truncate with preallocation falloc or full, from length 0, without a data file: past
   * the last used cluster, refcount structures for every data cluster and L2 table that may come
   * (qcow2_refcount_area, exact: a new refcount table), then one run of data clusters, whose
   * storage the file's truncate allocates; then the L2 entries, slice by slice (offset | COPIED;
   * extended L2: the bitmap left as it was), their tables from the allocator.
   */
  preallocateFile(size: number, mode: 'falloc' | 'full'): void {
    const cs = this.cs;
    let last = Math.ceil(this.file.length / cs) - 1;
    while (last >= 0 && this.getRefcount(last) === 0) last--;
    const dataClusters = Math.ceil(size / cs);
    const l2Tables = Math.ceil(dataClusters / this.l2Entries) + 1;
    const start = this.refcountArea((last + 1) * cs, dataClusters + l2Tables, true, 0, 0);
    if (this.allocClustersAt(start, dataClusters) !== dataClusters) throw new Error('preallocated data clusters are in use');
    this.file.extend(start + dataClusters * cs);
    this.allocated = { file: 'image', offset: start, length: dataClusters * cs, mode };
    for (let guest = 0, host = start, left = dataClusters; left > 0; ) {
      const n = Math.min(left, this.l2Entries - this.l2Index(guest));
      this.linkL2({ allocOffset: host, offset: guest, nbClusters: n, cowStart: { offset: 0, bytes: 0 }, cowEnd: { offset: n * cs, bytes: 0 } });
      guest += n * cs;
      host += n * cs;
      left -= n;
    }
  }

  /**
   * preallocate_co. With a data file and preallocation falloc or full, the data file's truncate to
   * the end (only where the copy on write left it shorter) allocates the storage from its old end.
   */
  preallocate(offset: number, newLength: number, mode: 'metadata' | 'falloc' | 'full' = 'metadata'): void {
    let bytes = newLength - offset;
    let hostOffset = 0;
    let curBytes = 0;
    const chunk = INT_MAX - (INT_MAX % this.cs);
    while (bytes > 0) {
      curBytes = Math.min(bytes, chunk);
      const r = this.allocHostOffset(offset, curBytes);
      hostOffset = r.hostOffset;
      curBytes = r.bytes;
      // qcow2_handle_l2meta walks its list from the newest entry.
      for (const m of r.metas.reverse()) this.linkL2(m);
      bytes -= curBytes;
      offset += curBytes;
    }
    const fileLength = this.hasDataFile ? this.dataFileLength : this.file.length;
    if (hostOffset + curBytes > fileLength) {
      if (this.hasDataFile) {
        if (mode !== 'metadata') this.allocated = { file: 'data', offset: fileLength, length: hostOffset + curBytes - fileLength, mode };
        this.dataFileLength = hostOffset + curBytes;
      }
      else this.file.extend(hostOffset + curBytes);
    }
  }

  /** qcow2_alloc_host_offset for a range no one has written yet. */
  allocHostOffset(offset: number, bytes: number): { hostOffset: number; bytes: number; metas: L2Meta[] } {
    let start = offset;
    let remaining = bytes;
    let clusterOffset = INV;
    let hostOffset = INV;
    let cur = 0;
    const metas: L2Meta[] = [];
    for (;;) {
      if (hostOffset === INV && clusterOffset !== INV) hostOffset = clusterOffset;
      start += cur;
      remaining -= cur;
      if (clusterOffset !== INV) clusterOffset += cur;
      if (remaining === 0) break;
      cur = remaining;
      // handle_copied: the lookup allocates the L2 table; a fresh entry needs a new allocation.
      const table = this.l2Table(start);
      if (!this.entryIsFree(table, this.l2Index(start))) throw new Error('preallocating over an allocated cluster');
      const r = this.handleAlloc(start, clusterOffset, cur);
      if (r === undefined) break;
      clusterOffset = r.hostOffset;
      cur = r.bytes;
      metas.push(r.meta);
    }
    return { hostOffset, bytes: bytes - remaining, metas };
  }

  handleAlloc(guest: number, hostIn: number, bytes: number): { hostOffset: number; bytes: number; meta: L2Meta } | undefined {
    const cs = this.cs;
    const within = guest % cs;
    const l2Index = this.l2Index(guest);
    let nb = Math.ceil((within + bytes) / cs);
    nb = Math.min(nb, this.l2Entries - l2Index, Math.floor(MAX_REQUEST_BYTES / cs));
    const table = this.l2Table(guest);
    let free = 0;
    while (free < nb && this.entryIsFree(table, l2Index + free)) free++;
    nb = free;
    let alloc = hostIn === INV ? INV : Math.floor(hostIn / cs) * cs;
    if (this.hasDataFile) alloc = guest - within;
    else if (alloc === INV) alloc = this.allocClusters(nb * cs);
    else nb = this.allocClustersAt(alloc, nb);
    if (nb === 0) return undefined;
    const nbBytes = Math.min(bytes + within, nb * cs);
    const out = Math.min(bytes, nbBytes - within);
    // calculate_l2_meta for unallocated clusters: copy-on-write covers the rest of the partial
    // first and last (sub)clusters.
    const cowStartTo = within;
    const cowStartFrom = Math.floor(within / this.subclusterSize) * this.subclusterSize;
    const cowEndFrom = within + out;
    const cowEndTo = Math.ceil(cowEndFrom / this.subclusterSize) * this.subclusterSize;
    return {
      hostOffset: alloc + within,
      bytes: out,
      meta: {
        allocOffset: alloc,
        offset: guest - within,
        nbClusters: Math.ceil(cowEndFrom / cs),
        cowStart: { offset: cowStartFrom, bytes: cowStartTo - cowStartFrom },
        cowEnd: { offset: cowEndFrom, bytes: cowEndTo - cowEndFrom },
      },
    };
  }

  /** qcow2_alloc_cluster_link_l2 with prealloc set: copy-on-write, then offset | COPIED entries. */
  linkL2(m: L2Meta): void {
    for (const region of [m.cowStart, m.cowEnd]) {
      if (region.bytes === 0) continue;
      const at = m.allocOffset + region.offset;
      if (this.hasDataFile) this.dataFileLength = Math.max(this.dataFileLength, at + region.bytes);
      else this.file.write(at, new Uint8Array(region.bytes));
    }
    const table = this.l2Table(m.offset);
    const dv = view(table);
    const first = this.l2Index(m.offset);
    for (let i = 0; i < m.nbClusters; i++) {
      const d = encodeStandardDescriptor({ zero: false, hostOffset: m.allocOffset + i * this.cs, reservedLow: 0, reservedHigh: 0 });
      // Extended L2: the bitmap is left as it was (0) for preallocated clusters.
      const at = (first + i) * this.l2EntryBytes;
      const bitmap = this.o.extendedL2 ? { zeroBitmap: dv.getUint32(at + 8), allocBitmap: dv.getUint32(at + 12) } : { zeroBitmap: 0, allocBitmap: 0 };
      encodeL2Entry(dv, at, { copied: true, compressed: false, ...d, ...bitmap }, this.o.extendedL2);
    }
  }
}

/** Computes the bytes QEMU 7.2 would leave in the image (and the external data file's length). */
export function planImage(options: ResolvedCreateOptions, luksArea?: Uint8Array): ImagePlan {
  return new QemuCreate(options, luksArea).run();
}
