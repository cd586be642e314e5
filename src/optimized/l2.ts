/**
 * From guest offsets to L2 entries through the in-memory L1 table and the L2 cache (the request
 * paths' fast lookups), and the active L1 table kept in memory and written through.
 */
import { view } from '../format/bytes.js';
import { encodeL1Entry } from '../format/l1.js';
import { encodeMapping, type Mapping, type NewL2Entry } from '../qcow2/mapping.js';
import { checkL2Offset, l1IndexOf, l2IndexOf, validMapping } from '../qcow2/tables.js';
import { decodeMapping } from './entries.js';
import { forgetMetadataMap } from './overlap.js';
import type { OptState } from './state.js';

/** The L2 table offset for a guest offset, 0 when none; refuses an unaligned one. */
export function l2TableOf(st: OptState, guestOffset: number): number {
  const index = l1IndexOf(st, guestOffset);
  return checkL2Offset(st, index, st.l1Offsets[index] ?? 0);
}

/** Mapping of the guest cluster at `clusterStart`; invalid entries are refused. */
export async function mappingOf(st: OptState, clusterStart: number): Promise<{ l2: number; mapping: Exclude<Mapping, { kind: 'invalid' }> }> {
  const l2 = l2TableOf(st, clusterStart);
  if (l2 === 0) return { l2, mapping: { kind: 'unallocated' } };
  const index = l2IndexOf(st, clusterStart);
  return { l2, mapping: validMapping(await entryAt(st, l2, index), clusterStart, l2 + index * st.geometry.l2EntryBytes) };
}

/** Entry `index` of the L2 table at `l2`, decoded (through the cache's slices); data at or past `fileEnd` is refused. */
export async function entryAt(st: OptState, l2: number, index: number, fileEnd = st.fileEnd): Promise<Mapping> {
  const E = st.geometry.l2EntryBytes;
  return st.l2Cache.useSlice(l2, index * E, (bytes, at, key) => decodeMapping(st, bytes, at / E, key, fileEnd));
}

/** Entries `first` .. `first + count - 1` of the L2 table at `l2`, decoded slice by slice. */
export async function entriesAt(st: OptState, l2: number, first: number, count: number, fileEnd = st.fileEnd): Promise<Mapping[]> {
  const E = st.geometry.l2EntryBytes;
  const perSlice = st.l2Cache.sliceBytes / E;
  const out: Mapping[] = [];
  for (let index = first; index < first + count; ) {
    const upto = Math.min(first + count, (Math.floor(index / perSlice) + 1) * perSlice);
    await st.l2Cache.useSlice(l2, index * E, (bytes, at, key) => {
      const base = at / E - index;
      for (let i = index; i < upto; i++) out.push(decodeMapping(st, bytes, base + i, key, fileEnd));
    });
    index = upto;
  }
  return out;
}

/** Sets entry `index` of the L2 table at `l2` (cached; written back in order later). */
export async function setEntry(st: OptState, l2: number, index: number, entry: NewL2Entry): Promise<void> {
  const E = st.geometry.l2EntryBytes;
  await st.l2Cache.useSlice(l2, index * E, (bytes, at, key) => {
    encodeMapping(st.geometry, bytes, at, entry);
    st.l2Cache.markDirty(key, bytes);
  });
}

/** Every entry of an L2 table (through the cache). */
export async function readL2Table(st: OptState, l2: number): Promise<Mapping[]> {
  const table = await st.l2Cache.readTable(l2);
  const out: Mapping[] = [];
  for (let i = 0; i < st.geometry.l2Entries; i++) out.push(decodeMapping(st, table, i, l2));
  return out;
}

export async function writeL1Entry(st: OptState, index: number, l2Offset: number, copied: boolean): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeL1Entry(view(bytes), 0, { l2Offset, copied, reservedLow: 0, reservedHigh: 0 });
  await st.order.writeThrough(Number(st.header.l1TableOffset) + index * 8, bytes, 'l1');
  st.l1Offsets[index] = l2Offset;
  st.l1Copied[index] = copied;
  forgetMetadataMap(st);
}

/** The active L1 table encoded, padded with zeros to `bytes`. */
export function encodeActiveL1(st: OptState, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const dv = view(out);
  st.l1Offsets.forEach((l2Offset, i) => {
    if (l2Offset !== 0 || st.l1Copied[i]) encodeL1Entry(dv, i * 8, { l2Offset, copied: st.l1Copied[i] ?? false, reservedLow: 0, reservedHigh: 0 });
  });
  return out;
}
