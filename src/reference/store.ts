/**
 * The reference engine's metadata store (src/qcow2/state.ts): the obvious one. Nothing is kept in
 * memory; every read goes to the disk through the generated parsers (entries.ts) and every write
 * goes straight to the disk, where DurableFile flushes it before the next one begins.
 */
import { encodeSnapshotExtra, type SnapshotEntry } from '../format/snapshot.js';
import type { Mapping, NewL2Entry } from '../qcow2/mapping.js';
import type { MetadataStore } from '../qcow2/state.js';
import type { WriteTag } from '../io/block-file.js';
import { joinU64, parseBitmapDirectory, parseBitmapTable, parseSnapshotTable } from '../spec/kaitai.js';
import * as disk from './entries.js';
import { readGuest } from './read.js';
import type { RefState } from './state.js';
import { writeGuest } from './write.js';

export class ReferenceStore implements MetadataStore {
  constructor(private readonly st: RefState) {}

  l1Entry(index: number) {
    return disk.readL1Entry(this.st, index);
  }
  setL1Entry(index: number, l2Offset: number, copied: boolean) {
    return disk.writeL1Entry(this.st, index, l2Offset, copied);
  }
  async activeL1Bytes(bytes: number): Promise<Uint8Array> {
    const out = new Uint8Array(bytes);
    const l1Bytes = this.st.header.l1Size * 8;
    if (l1Bytes > 0) out.set((await this.st.file.read(Number(this.st.header.l1TableOffset), l1Bytes)).subarray(0, bytes));
    return out;
  }
  async replaceActiveL1(table: Uint8Array): Promise<void> {
    await this.st.file.write(Number(this.st.header.l1TableOffset), table, 'l1');
  }
  activeL1Moved(): void {}
  readL1Table(offset: number, entries: number) {
    return disk.readL1Table(this.st, offset, entries);
  }

  l2Entry(l2: number, index: number) {
    return disk.readL2Entry(this.st, l2, index);
  }
  async l2Entries(l2: number, first: number, count: number): Promise<Mapping[]> {
    const out: Mapping[] = [];
    for (let i = first; i < first + count; i++) out.push(await disk.readL2Entry(this.st, l2, i));
    return out;
  }
  setL2Entry(l2: number, index: number, entry: NewL2Entry) {
    return disk.writeL2Entry(this.st, l2, index, entry);
  }
  l2Table(l2: number) {
    return disk.readL2Table(this.st, l2);
  }
  async newL2Table(offset: number, from: number): Promise<void> {
    const C = this.st.geometry.clusterSize;
    const table = new Uint8Array(C);
    if (from !== 0) table.set(await this.st.file.read(from, C));
    await this.st.file.write(offset, table, 'l2');
  }

  refcountTableEntries(): number {
    return disk.refcountTableEntries(this.st);
  }
  refcountBlock(index: number) {
    return disk.readRefcountTableEntry(this.st, index);
  }
  setRefcountTableEntry(index: number, blockOffset: number) {
    return disk.writeRefcountTableEntry(this.st, index, blockOffset);
  }
  refcountTableReplaced(): void {}
  getRefcount(cluster: number) {
    return disk.getRefcount(this.st, cluster);
  }
  putRefcount(block: number, cluster: number, value: number) {
    return disk.putRefcount(this.st, block, cluster, value);
  }
  lastUsedInBlock(block: number) {
    return disk.lastUsedInBlock(this.st, block);
  }
  async newRefcountBlock(offset: number, block: Uint8Array): Promise<void> {
    await this.st.file.write(offset, block, 'refcount-block');
  }
  async beforeRefcountChange(): Promise<void> {}
  afterRefcountChange(): void {}
  async beforeRefcountRewrite(): Promise<void> {}

  writeThrough(offset: number, bytes: Uint8Array, tag: WriteTag) {
    return this.st.file.write(offset, bytes, tag);
  }

  async readSnapshots(): Promise<SnapshotEntry[]> {
    const st = this.st;
    if (st.header.nbSnapshots === 0) return [];
    // The padding after the last entry may lie past the end of the file (QEMU does not write it).
    const bytes = new Uint8Array(st.snapshotTableBytes);
    bytes.set(await st.file.read(Number(st.header.snapshotsOffset), st.snapshotTableBytes));
    return parseSnapshotTable(bytes, st.header.nbSnapshots).entries.map((e) => {
      const x = e.extraData;
      const extra = {
        ...(x.vmStateSizeLargeHi !== undefined ? { vmStateSizeLarge: joinU64(x.vmStateSizeLargeHi, x.vmStateSizeLargeLo ?? 0) } : {}),
        ...(x.diskSizeHi !== undefined ? { diskSize: joinU64(x.diskSizeHi, x.diskSizeLo ?? 0) } : {}),
        ...(x.icountHi !== undefined ? { icount: BigInt.asIntN(64, joinU64(x.icountHi, x.icountLo ?? 0)) } : {}),
      };
      return {
        l1TableOffset: joinU64(e.l1TableOffsetHi, e.l1TableOffsetLo),
        l1Size: e.l1Size,
        id: e.idStr,
        name: e.name,
        dateSec: e.dateSec,
        dateNsec: e.dateNsec,
        vmClockNsec: joinU64(e.vmClockNsecHi, e.vmClockNsecLo),
        vmStateSize: e.vmStateSize,
        extraData: encodeSnapshotExtra(extra, x.unknownExtraData),
        extra,
      };
    });
  }
  async readBitmapDirectory(offset: number, bytes: number, count: number) {
    const directory = parseBitmapDirectory(await this.st.file.read(offset, bytes), count);
    return directory.entries.map((b) => ({ name: b.name, tableOffset: b.bitmapTableOffset, tableEntries: b.bitmapTableSize }));
  }
  async readBitmapTable(offset: number, entries: number) {
    return parseBitmapTable(await this.st.file.read(offset, entries * 8), entries).entries.map((e) => e.offset);
  }

  readGuest(offset: number, length: number) {
    return readGuest(this.st, offset, length);
  }
  writeGuest(offset: number, data: Uint8Array) {
    return writeGuest(this.st, offset, data);
  }
}
