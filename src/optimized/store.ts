/**
 * The optimized engine's metadata store (src/qcow2/state.ts): the active L1 and the refcount
 * table in memory, L2 tables and refcount blocks in the sliced caches, and every write placed by
 * the write-ordering rules (flush-order.ts): table and header writes go through, refcount changes
 * set the dependencies between the caches (or, with lazy refcounts, mark the image dirty first).
 */
import { decodeBitmapDirectory, decodeBitmapTable } from '../format/bitmap.js';
import { decodeL1Table } from '../format/l1.js';
import { decodeSnapshotTable, type SnapshotEntry } from '../format/snapshot.js';
import type { WriteTag } from '../io/block-file.js';
import type { Mapping, NewL2Entry } from '../qcow2/mapping.js';
import type { MetadataStore } from '../qcow2/state.js';
import { beforeLazyIncrement } from './header.js';
import { encodeActiveL1, entriesAt, entryAt, readL2Table, setEntry, writeL1Entry } from './l2.js';
import { forgetMetadataMap, imageMetadataAt } from './overlap.js';
import { readGuest } from './read.js';
import { getRefcount, lastUsedInBlock, putRefcount, refcountBlock, writeRefcountTableEntry } from './refcounts.js';
import type { OptState } from './state.js';
import { writeGuest } from './write.js';

export class OptimizedStore implements MetadataStore {
  constructor(private readonly st: OptState) {}

  async l1Entry(index: number) {
    return { l2Offset: this.st.l1Offsets[index] ?? 0, copied: this.st.l1Copied[index] ?? false };
  }
  setL1Entry(index: number, l2Offset: number, copied: boolean) {
    return writeL1Entry(this.st, index, l2Offset, copied);
  }
  async activeL1Bytes(bytes: number) {
    return encodeActiveL1(this.st, bytes);
  }
  async replaceActiveL1(table: Uint8Array): Promise<void> {
    const st = this.st;
    await st.order.writeThrough(Number(st.header.l1TableOffset), table, 'l1');
    const decoded = decodeL1Table(table, st.header.l1Size);
    st.l1Offsets = decoded.map((e) => e.l2Offset);
    st.l1Copied = decoded.map((e) => e.copied);
    forgetMetadataMap(st);
  }
  activeL1Moved(): void {
    const st = this.st;
    while (st.l1Offsets.length < st.header.l1Size) {
      st.l1Offsets.push(0);
      st.l1Copied.push(false);
    }
    forgetMetadataMap(st);
  }
  async readL1Table(offset: number, entries: number): Promise<number[]> {
    if (entries === 0) return [];
    const bytes = new Uint8Array(entries * 8);
    bytes.set(await this.st.file.read(offset, entries * 8));
    return decodeL1Table(bytes, entries).map((e) => e.l2Offset);
  }

  l2Entry(l2: number, index: number, forStatus = false) {
    return entryAt(this.st, l2, index, forStatus ? Infinity : this.st.fileEnd);
  }
  l2Entries(l2: number, first: number, count: number, forStatus = false) {
    return entriesAt(this.st, l2, first, count, forStatus ? Infinity : this.st.fileEnd);
  }
  setL2Entry(l2: number, index: number, entry: NewL2Entry) {
    return setEntry(this.st, l2, index, entry);
  }
  l2Table(l2: number) {
    return readL2Table(this.st, l2);
  }
  async newL2Table(offset: number, from: number): Promise<void> {
    const st = this.st;
    const table = from !== 0 ? await st.l2Cache.readTable(from) : new Uint8Array(st.geometry.clusterSize);
    await st.order.writeThrough(offset, table, 'l2');
    st.l2Cache.putCleanTable(offset, table);
  }

  refcountTableEntries(): number {
    return this.st.refcountTable.length;
  }
  async refcountBlock(index: number) {
    return refcountBlock(this.st, index);
  }
  setRefcountTableEntry(index: number, blockOffset: number) {
    return writeRefcountTableEntry(this.st, index, blockOffset);
  }
  refcountTableReplaced(offsets: number[]): void {
    this.st.refcountTable = offsets;
    forgetMetadataMap(this.st);
  }
  getRefcount(cluster: number) {
    return getRefcount(this.st, cluster);
  }
  knownMetadataAt(hostOffset: number): string | undefined {
    return imageMetadataAt(this.st, hostOffset);
  }
  putRefcount(block: number, cluster: number, value: number) {
    return putRefcount(this.st, block, cluster, value);
  }
  lastUsedInBlock(block: number) {
    return lastUsedInBlock(this.st, block);
  }
  async newRefcountBlock(offset: number, block: Uint8Array): Promise<void> {
    await this.st.order.writeThrough(offset, block, 'refcount-block');
    this.st.refcountCache.putCleanTable(offset, block);
  }
  async beforeRefcountChange(delta: number): Promise<void> {
    if (delta < 0) await this.st.order.afterDecrement();
    else if (!(await beforeLazyIncrement(this.st))) await this.st.order.afterIncrement();
  }
  afterRefcountChange(cluster: number, old: number, value: number): void {
    const st = this.st;
    const C = st.geometry.clusterSize;
    if (old === 0) st.fileEnd = Math.max(st.fileEnd, (cluster + 1) * C);
    if (value === 0) {
      // A freed cluster may have been an L2 table: its cached copy must never be written back.
      st.l2Cache.forgetTable(cluster * C);
      // Compressed data may no longer be appended to it: it can be reused for anything now.
      if (Math.floor(st.compressedCursor / C) === cluster) st.compressedCursor = 0;
    }
  }
  async beforeRefcountRewrite(): Promise<void> {
    await this.st.order.flushCaches();
    this.st.refcountCache.clear();
    this.st.compressedCursor = 0;
  }

  async writeThrough(offset: number, bytes: Uint8Array, tag: WriteTag): Promise<void> {
    forgetMetadataMap(this.st); // the tables a header names may have moved
    await this.st.order.writeThrough(offset, bytes, tag);
    forgetMetadataMap(this.st);
  }

  async readSnapshots(): Promise<SnapshotEntry[]> {
    const st = this.st;
    if (st.header.nbSnapshots === 0) return [];
    const bytes = new Uint8Array(st.snapshotTableBytes);
    bytes.set(await st.file.read(Number(st.header.snapshotsOffset), st.snapshotTableBytes));
    return decodeSnapshotTable(bytes, st.header.nbSnapshots, Number(st.header.snapshotsOffset)).entries;
  }
  async readBitmapDirectory(offset: number, bytes: number, count: number) {
    const { entries } = decodeBitmapDirectory(await this.st.file.read(offset, bytes), count, offset);
    return entries.map((b) => ({ name: b.name, tableOffset: Number(b.bitmapTableOffset), tableEntries: b.bitmapTableSize }));
  }
  async readBitmapTable(offset: number, entries: number) {
    return decodeBitmapTable(await this.st.file.read(offset, entries * 8), entries).map((e) => e.hostOffset);
  }

  readGuest(offset: number, length: number) {
    return readGuest(this.st, offset, length);
  }
  /** The metadata mutex is held (zero writes run under it). */
  writeGuest(offset: number, data: Uint8Array) {
    return writeGuest(this.st, offset, data, true);
  }
}
