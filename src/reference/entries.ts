/**
 * L1 and L2 entries of the reference engine: read one at a time from disk through the parsers
 * generated from spec/*.ksy, classified once into a union that includes `invalid`, and written back
 * with the hand-written encoders.
 */
import { corrupt } from '../errors.js';
import { view } from '../format/bytes.js';
import { encodeCompressedDescriptor } from '../format/compressed.js';
import { encodeL1Entry } from '../format/l1.js';
import { encodeL2Entry, encodeStandardDescriptor } from '../format/l2.js';
import type { Mapping, NewL2Entry } from '../engine/mapping.js';
import { parseL1Table, parseL2Table } from '../spec/kaitai.js';
import type { RefState } from './state.js';

export type { Mapping, NewL2Entry } from '../engine/mapping.js';

export interface L1Slot {
  /** File offset of the L1 entry. */
  at: number;
  l2Offset: number;
  copied: boolean;
}

export interface L2Slot {
  /** File offset of the L2 entry. */
  at: number;
  mapping: Mapping;
}

export function l1Index(st: RefState, guestOffset: number): number {
  return Math.floor(guestOffset / st.geometry.clusterSize / st.geometry.l2Entries);
}

export async function readL1Entry(st: RefState, index: number, l1Offset = Number(st.header.l1TableOffset)): Promise<L1Slot> {
  const at = l1Offset + index * 8;
  const bytes = await st.file.read(at, 8);
  if (bytes.byteLength < 8) throw corrupt(`L1 entry ${index} lies past the end of the file`, { offset: at });
  const e = parseL1Table(bytes, 1).entries[0]!;
  if (e.offset % st.geometry.clusterSize !== 0) {
    throw corrupt(`L1 entry ${index} points to unaligned L2 table 0x${e.offset.toString(16)}`, { offset: at });
  }
  return { at, l2Offset: e.offset, copied: e.copied };
}

export async function writeL1Entry(st: RefState, at: number, l2Offset: number, copied: boolean): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeL1Entry(view(bytes), 0, { l2Offset, copied, reservedLow: 0, reservedHigh: 0 });
  await st.file.write(at, bytes, 'l1');
}

export async function readL2Entry(st: RefState, l2Offset: number, index: number): Promise<L2Slot> {
  const g = st.geometry;
  const at = l2Offset + index * g.l2EntryBytes;
  const bytes = await st.file.read(at, g.l2EntryBytes);
  if (bytes.byteLength < g.l2EntryBytes) throw corrupt(`L2 entry lies past the end of the file`, { offset: at });
  return { at, mapping: classify(st, bytes, at) };
}

export function classify(st: RefState, bytes: Uint8Array, at: number): Mapping {
  const g = st.geometry;
  const e = parseL2Table(bytes, { extendedL2: g.extendedL2, clusterBits: g.clusterBits, numEntries: 1 }).entries[0]!;
  const external = st.features.externalDataFile;
  if (e.compressed) {
    const d = e.compressedDescriptor!;
    if (external) return { kind: 'invalid', reason: 'compressed cluster in an image with an external data file' };
    if (g.extendedL2 && (e.allocBitmap || e.zeroBitmap)) return { kind: 'invalid', reason: 'compressed cluster with a subcluster bitmap' };
    if (d.offsetHi >= 0x20_0000) return { kind: 'invalid', reason: 'compressed data offset beyond 2^53' };
    const hostOffset = d.offsetHi * 0x1_0000_0000 + d.offsetLo;
    return { kind: 'compressed', hostOffset, length: (d.nbSectors + 1) * 512 - (hostOffset % 512) };
  }
  const offset = e.offset ?? 0;
  if (offset % g.clusterSize !== 0) {
    return { kind: 'invalid', reason: `host offset 0x${offset.toString(16)} is not cluster aligned (entry at 0x${at.toString(16)})` };
  }
  const hasOffset = offset !== 0 || (external && e.copied);
  if (g.extendedL2) {
    const alloc = e.allocBitmap ?? 0;
    const zero = e.zeroBitmap ?? 0;
    if ((alloc & zero) !== 0) return { kind: 'invalid', reason: 'a subcluster is both allocated and zero' };
    if (!hasOffset && alloc !== 0) return { kind: 'invalid', reason: 'allocated subclusters without a host cluster' };
    return { kind: 'subclusters', hostOffset: offset, copied: e.copied, alloc, zero };
  }
  if (e.readsAsZero) return { kind: 'zero', hostOffset: offset, copied: e.copied };
  if (!hasOffset) return { kind: 'unallocated' };
  return { kind: 'normal', hostOffset: offset, copied: e.copied };
}

export async function writeL2Entry(st: RefState, at: number, entry: NewL2Entry): Promise<void> {
  const g = st.geometry;
  const bytes = new Uint8Array(g.l2EntryBytes);
  const std = (hostOffset: number, zero: boolean) => encodeStandardDescriptor({ hostOffset, zero, reservedLow: 0, reservedHigh: 0 });
  let fields: { copied: boolean; compressed: boolean; descriptorHi: number; descriptorLo: number; allocBitmap: number; zeroBitmap: number };
  switch (entry.kind) {
    case 'unallocated':
      fields = { copied: false, compressed: false, descriptorHi: 0, descriptorLo: 0, allocBitmap: 0, zeroBitmap: 0 };
      break;
    case 'normal':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, false), allocBitmap: 0, zeroBitmap: 0 };
      break;
    case 'zero':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, true), allocBitmap: 0, zeroBitmap: 0 };
      break;
    case 'subclusters':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, false), allocBitmap: entry.alloc >>> 0, zeroBitmap: entry.zero >>> 0 };
      break;
    case 'compressed': {
      const additionalSectors = Math.ceil(((entry.hostOffset % 512) + entry.length) / 512) - 1;
      const d = encodeCompressedDescriptor({ hostOffset: entry.hostOffset, offsetHighBits: 0, additionalSectors }, g.clusterBits);
      fields = { copied: false, compressed: true, ...d, allocBitmap: 0, zeroBitmap: 0 };
      break;
    }
  }
  encodeL2Entry(view(bytes), 0, fields, g.extendedL2);
  await st.file.write(at, bytes, 'l2');
}
