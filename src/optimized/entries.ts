/**
 * L2 entries of the optimized engine, decoded with the hand-written codecs straight from cached
 * tables into a union that includes `invalid`, and encoded back into a table.
 */
import type { Mapping, NewL2Entry } from '../engine/mapping.js';
import { view } from '../format/bytes.js';
import { decodeCompressedDescriptor, encodeCompressedDescriptor } from '../format/compressed.js';
import { decodeL2Entry, decodeStandardDescriptor, encodeL2Entry, encodeStandardDescriptor } from '../format/l2.js';
import type { OptState } from './state.js';

export type { Mapping, NewL2Entry } from '../engine/mapping.js';

/** Decodes entry `index` of an L2 table held in `table`. */
export function decodeMapping(st: OptState, table: Uint8Array, index: number, tableOffset: number): Mapping {
  const g = st.geometry;
  const at = index * g.l2EntryBytes;
  const e = decodeL2Entry(view(table), at, g.extendedL2);
  const external = st.features.externalDataFile;
  if (e.compressed) {
    if (external) return { kind: 'invalid', reason: 'compressed cluster in an image with an external data file', at: tableOffset + at };
    if (g.extendedL2 && (e.allocBitmap || e.zeroBitmap)) return { kind: 'invalid', reason: 'compressed cluster with a subcluster bitmap', at: tableOffset + at };
    const d = decodeCompressedDescriptor(e, g.clusterBits);
    if (d.offsetHighBits !== 0) return { kind: 'invalid', reason: 'compressed data offset beyond 2^53', at: tableOffset + at };
    if (d.hostOffset >= st.fileEnd) return { kind: 'invalid', reason: `compressed data at 0x${d.hostOffset.toString(16)} is past the end of the file`, at: tableOffset + at };
    return { kind: 'compressed', hostOffset: d.hostOffset, length: (d.additionalSectors + 1) * 512 - (d.hostOffset % 512) };
  }
  const { hostOffset: offset, zero } = decodeStandardDescriptor(e);
  if (offset % g.clusterSize !== 0) {
    const where = (tableOffset + at).toString(16);
    return { kind: 'invalid', reason: `host offset 0x${offset.toString(16)} is not cluster aligned (entry at 0x${where})`, at: tableOffset + at };
  }
  const hasOffset = offset !== 0 || (external && e.copied);
  if (!external && offset >= st.fileEnd) {
    return { kind: 'invalid', reason: `host offset 0x${offset.toString(16)} is past the end of the file (entry at 0x${(tableOffset + at).toString(16)})`, at: tableOffset + at };
  }
  if (g.extendedL2) {
    const alloc = e.allocBitmap >>> 0;
    const zeroMask = e.zeroBitmap >>> 0;
    if ((alloc & zeroMask) !== 0) return { kind: 'invalid', reason: 'a subcluster is both allocated and zero', at: tableOffset + at };
    if (!hasOffset && alloc !== 0) return { kind: 'invalid', reason: 'allocated subclusters without a host cluster', at: tableOffset + at };
    return { kind: 'subclusters', hostOffset: offset, copied: e.copied, alloc, zero: zeroMask };
  }
  if (zero) return { kind: 'zero', hostOffset: offset, copied: e.copied };
  if (!hasOffset) return { kind: 'unallocated' };
  return { kind: 'normal', hostOffset: offset, copied: e.copied };
}

/** Encodes `entry` as entry `index` of `table`. */
export function encodeMapping(st: OptState, table: Uint8Array, index: number, entry: NewL2Entry): void {
  const g = st.geometry;
  const std = (hostOffset: number, zero: boolean) => encodeStandardDescriptor({ hostOffset, zero, reservedLow: 0, reservedHigh: 0 });
  const base = { allocBitmap: 0, zeroBitmap: 0 };
  let fields;
  switch (entry.kind) {
    case 'unallocated':
      fields = { copied: false, compressed: false, descriptorHi: 0, descriptorLo: 0, ...base };
      break;
    case 'normal':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, false), ...base };
      break;
    case 'zero':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, true), ...base };
      break;
    case 'subclusters':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, false), allocBitmap: entry.alloc >>> 0, zeroBitmap: entry.zero >>> 0 };
      break;
    case 'compressed': {
      const additionalSectors = Math.ceil(((entry.hostOffset % 512) + entry.length) / 512) - 1;
      const d = encodeCompressedDescriptor({ hostOffset: entry.hostOffset, offsetHighBits: 0, additionalSectors }, g.clusterBits);
      fields = { copied: false, compressed: true, ...d, ...base };
      break;
    }
  }
  encodeL2Entry(view(table), index * g.l2EntryBytes, fields, g.extendedL2);
}

/** True when the mapping owns a host cluster (see the reference engine's release.ts). */
export function hasHostCluster(st: OptState, m: Mapping): m is Extract<Mapping, { hostOffset: number; copied: boolean }> {
  if (m.kind !== 'normal' && m.kind !== 'zero' && m.kind !== 'subclusters') return false;
  return m.hostOffset !== 0 || (st.features.externalDataFile && m.copied && m.kind !== 'zero');
}
