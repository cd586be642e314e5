/**
 * The reference engine's metadata reads: every L1 entry, L2 entry, refcount table entry and
 * refcount is read from the disk when it is needed, through the parsers generated from
 * spec/*.ksy, and classified by the shared rules (src/qcow2/mapping.ts). Writes use the shared
 * encoders and go straight to the disk.
 */
import { corrupt, unsupported } from '../errors.js';
import { view } from '../format/bytes.js';
import { checkHostRange } from '../format/host-offset.js';
import { encodeL1Entry } from '../format/l1.js';
import { encodeRefcountTableEntry, writeRefcount } from '../format/refcount.js';
import { classifyL2Entry, encodeMapping, type Mapping, type NewL2Entry } from '../qcow2/mapping.js';
import type { L1Slot } from '../qcow2/state.js';
import { parseL1Table, parseL2Table, parseRefcountBlock, parseRefcountTable, refcountValues } from '../spec/kaitai.js';
import type { RefState } from './state.js';

const TWO_32 = 0x1_0000_0000;

export async function readL1Entry(st: RefState, index: number): Promise<L1Slot> {
  const at = Number(st.header.l1TableOffset) + index * 8;
  const bytes = await st.file.read(at, 8);
  if (bytes.byteLength < 8) throw corrupt(`L1 entry ${index} lies past the end of the file`, { offset: at });
  const e = parseL1Table(bytes, 1).entries[0]!;
  return { l2Offset: e.offset, copied: e.copied };
}

export async function writeL1Entry(st: RefState, index: number, l2Offset: number, copied: boolean): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeL1Entry(view(bytes), 0, { l2Offset, copied, reservedLow: 0, reservedHigh: 0 });
  await st.file.write(Number(st.header.l1TableOffset) + index * 8, bytes, 'l1');
}

/** The L2 table offsets of an L1 table (0 where unallocated). */
export async function readL1Table(st: RefState, offset: number, entries: number): Promise<number[]> {
  if (entries === 0) return [];
  return parseL1Table(await st.file.read(offset, entries * 8), entries).entries.map((e) => e.offset);
}

/** Classifies the L2 entries in `bytes`, the first of which is at file offset `at`. */
function classifyAll(st: RefState, bytes: Uint8Array, count: number, at: number): Mapping[] {
  const g = st.geometry;
  const table = parseL2Table(bytes, { extendedL2: g.extendedL2, clusterBits: g.clusterBits, numEntries: count });
  const ctx = { geometry: g, externalDataFile: st.features.externalDataFile, fileEnd: Infinity };
  return table.entries.map((e, i) => {
    const d = e.compressed ? e.compressedDescriptor! : undefined;
    const decoded = {
      copied: e.copied,
      compressed: d && {
        hostOffset: (d.offsetHi % 0x20_0000) * TWO_32 + d.offsetLo,
        beyond2To53: d.offsetHi >= 0x20_0000,
        additionalSectors: d.nbSectors,
      },
      hostOffset: e.offset ?? 0,
      zeroFlag: e.readsAsZero === true,
      allocBitmap: e.allocBitmap ?? 0,
      zeroBitmap: e.zeroBitmap ?? 0,
    };
    return classifyL2Entry(decoded, ctx, at + i * g.l2EntryBytes);
  });
}

export async function readL2Entry(st: RefState, l2: number, index: number): Promise<Mapping> {
  const g = st.geometry;
  const at = l2 + index * g.l2EntryBytes;
  const bytes = await st.file.read(at, g.l2EntryBytes);
  if (bytes.byteLength < g.l2EntryBytes) throw corrupt(`L2 entry lies past the end of the file`, { offset: at });
  return classifyAll(st, bytes, 1, at)[0]!;
}

/** Every entry of the L2 table at `l2`. */
export async function readL2Table(st: RefState, l2: number): Promise<Mapping[]> {
  const g = st.geometry;
  const bytes = new Uint8Array(g.clusterSize);
  bytes.set(await st.file.read(l2, g.clusterSize));
  return classifyAll(st, bytes, g.l2Entries, l2);
}

export async function writeL2Entry(st: RefState, l2: number, index: number, entry: NewL2Entry): Promise<void> {
  const bytes = new Uint8Array(st.geometry.l2EntryBytes);
  encodeMapping(st.geometry, bytes, 0, entry);
  await st.file.write(l2 + index * st.geometry.l2EntryBytes, bytes, 'l2');
}

export function refcountTableEntries(st: RefState): number {
  return (st.header.refcountTableClusters * st.geometry.clusterSize) / 8;
}

/** Offset of refcount block `index`, 0 when it does not exist. */
export async function readRefcountTableEntry(st: RefState, index: number): Promise<number> {
  if (index >= refcountTableEntries(st)) return 0;
  const at = Number(st.header.refcountTableOffset) + index * 8;
  const e = parseRefcountTable(await st.file.read(at, 8), 1).entries[0]!;
  if (e.offsetHi > 0x1f_ffff) throw corrupt(`refcount block ${index} offset is beyond 2^53`, { offset: at });
  const offset = e.offsetHi * TWO_32 + e.offsetLo * 512;
  if (offset % st.geometry.clusterSize !== 0) {
    throw corrupt(`refcount block ${index} at unaligned offset 0x${offset.toString(16)}`, { offset: at });
  }
  return checkHostRange(offset, st.geometry.clusterSize, `refcount block ${index}`, at);
}

export async function writeRefcountTableEntry(st: RefState, index: number, blockOffset: number): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeRefcountTableEntry(view(bytes), 0, { blockOffset, offsetHighBits: 0, reserved: 0 });
  await st.file.write(Number(st.header.refcountTableOffset) + index * 8, bytes, 'refcount-table');
}

/** Where refcount `index` of a block sits: the bytes to read and the entry's place among them. */
function entryBytes(order: number, index: number): { byte: number; length: number; within: number; count: number } {
  if (order < 3) {
    const perByte = 8 >> order;
    return { byte: Math.floor(index / perByte), length: 1, within: index % perByte, count: perByte };
  }
  const width = (1 << order) / 8;
  return { byte: index * width, length: width, within: 0, count: 1 };
}

export async function getRefcount(st: RefState, cluster: number): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  const block = await readRefcountTableEntry(st, Math.floor(cluster / E));
  if (block === 0) return 0;
  const order = st.geometry.refcountOrder;
  const where = entryBytes(order, cluster % E);
  const bytes = await st.file.read(block + where.byte, where.length);
  if (bytes.byteLength < where.length) throw corrupt('refcount block lies past the end of the file', { offset: block });
  const value = refcountValues(parseRefcountBlock(bytes, order, where.count))[where.within]!;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw unsupported(`refcount of cluster ${cluster} exceeds 2^53 - 1`);
  return Number(value);
}

/** Sets a refcount in the existing block at `block`. */
export async function putRefcount(st: RefState, block: number, cluster: number, value: number): Promise<void> {
  const order = st.geometry.refcountOrder;
  const where = entryBytes(order, cluster % st.geometry.refcountBlockEntries);
  const bytes = await st.file.read(block + where.byte, where.length);
  const buf = new Uint8Array(where.length);
  buf.set(bytes);
  writeRefcount(buf, where.within, order, value);
  await st.file.write(block + where.byte, buf, 'refcount-block');
}

export async function lastUsedInBlock(st: RefState, block: number): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  const values = refcountValues(parseRefcountBlock(await st.file.read(block, st.geometry.clusterSize), st.geometry.refcountOrder, E));
  for (let j = E - 1; j >= 0; j--) if (values[j] !== 0n) return j;
  return -1;
}
