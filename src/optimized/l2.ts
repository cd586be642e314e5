/** From guest offsets to L2 entries (through the L2 cache), and L2 tables this image may write to. */
import { corrupt, usage } from '../errors.js';
import { view } from '../format/bytes.js';
import { encodeL1Entry } from '../format/l1.js';
import { decodeMapping, encodeMapping, type Mapping, type NewL2Entry } from './entries.js';
import { forgetMetadataMap } from './overlap.js';
import { adjustRefcount, allocateClusters } from './refcounts.js';
import type { OptState } from './state.js';

export function l1IndexOf(st: OptState, guestOffset: number): number {
  return Math.floor(guestOffset / st.geometry.clusterSize / st.geometry.l2Entries);
}

export function l2IndexOf(st: OptState, guestOffset: number): number {
  return Math.floor(guestOffset / st.geometry.clusterSize) % st.geometry.l2Entries;
}

/** The L2 table offset for a guest offset, 0 when none; refuses an unaligned one. */
export function l2TableOf(st: OptState, guestOffset: number): number {
  const index = l1IndexOf(st, guestOffset);
  const l2 = st.l1Offsets[index] ?? 0;
  if (l2 % st.geometry.clusterSize !== 0) {
    throw corrupt(`L1 entry ${index} points to unaligned L2 table 0x${l2.toString(16)}`, {
      offset: Number(st.header.l1TableOffset) + index * 8,
    });
  }
  return l2;
}

/** Mapping of the guest cluster at `clusterStart`; invalid entries are refused. */
export async function mappingOf(st: OptState, clusterStart: number): Promise<{ l2: number; mapping: Mapping }> {
  const l2 = l2TableOf(st, clusterStart);
  if (l2 === 0) return { l2, mapping: { kind: 'unallocated' } };
  const index = l2IndexOf(st, clusterStart);
  const mapping = await entryAt(st, l2, index);
  if (mapping.kind === 'invalid') {
    throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${mapping.reason}`, {
      offset: l2 + index * st.geometry.l2EntryBytes,
    });
  }
  return { l2, mapping };
}

/** Entry `index` of the L2 table at `l2`, decoded (through the cache's slices). */
export async function entryAt(st: OptState, l2: number, index: number): Promise<Mapping> {
  const E = st.geometry.l2EntryBytes;
  return st.l2Cache.useSlice(l2, index * E, (bytes, at, key) => decodeMapping(st, bytes, at / E, key));
}

/** Sets entry `index` of the L2 table at `l2` (cached; written back in order later). */
export async function setEntry(st: OptState, l2: number, index: number, entry: NewL2Entry): Promise<void> {
  const E = st.geometry.l2EntryBytes;
  await st.l2Cache.useSlice(l2, index * E, (bytes, at, key) => {
    encodeMapping(st, bytes, at / E, entry);
    st.l2Cache.markDirty(key, bytes);
  });
}

export async function writeL1Entry(st: OptState, index: number, l2Offset: number, copied: boolean): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeL1Entry(view(bytes), 0, { l2Offset, copied, reservedLow: 0, reservedHigh: 0 });
  await st.order.writeThrough(Number(st.header.l1TableOffset) + index * 8, bytes, 'l1');
  st.l1Offsets[index] = l2Offset;
  forgetMetadataMap(st);
  st.l1Copied[index] = copied;
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

/** Offset of a writable (refcount 1) L2 table for `guestOffset`; the metadata mutex must be held. */
export async function writableL2(st: OptState, guestOffset: number): Promise<number> {
  const C = st.geometry.clusterSize;
  const index = l1IndexOf(st, guestOffset);
  if (index >= st.header.l1Size) throw usage(`guest offset 0x${guestOffset.toString(16)} is beyond the L1 table`);
  const old = l2TableOf(st, guestOffset);
  if (old !== 0 && st.l1Copied[index]) return old;
  const fresh = await allocateClusters(st, 1);
  const table = old !== 0 ? await st.l2Cache.readTable(old) : new Uint8Array(C);
  await st.order.writeThrough(fresh, table, 'l2');
  st.l2Cache.putCleanTable(fresh, table);
  await writeL1Entry(st, index, fresh, true);
  if (old !== 0) await adjustRefcount(st, old / C, -1);
  return fresh;
}
