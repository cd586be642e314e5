/** From a guest offset to its L1 entry, its L2 table and the entry there; L2 tables an update may change. */
import { corrupt, usage } from '../errors.js';
import { checkHostRange } from '../format/host-offset.js';
import type { Mapping } from './mapping.js';
import { adjustRefcount, allocateClusters } from './refcounts.js';
import type { Qcow2State } from './state.js';

export function l1IndexOf(st: Pick<Qcow2State, 'geometry'>, guestOffset: number): number {
  return Math.floor(guestOffset / st.geometry.clusterSize / st.geometry.l2Entries);
}

export function l2IndexOf(st: Pick<Qcow2State, 'geometry'>, guestOffset: number): number {
  return Math.floor(guestOffset / st.geometry.clusterSize) % st.geometry.l2Entries;
}

/** Guest bytes one L1 entry maps. */
export function l1Span(st: Pick<Qcow2State, 'geometry'>): number {
  return st.geometry.clusterSize * st.geometry.l2Entries;
}

/** Refuses an L2 table offset that is not cluster aligned or cannot be addressed, naming the L1 entry. */
export function checkL2Offset(st: Pick<Qcow2State, 'geometry' | 'header'>, index: number, l2Offset: number): number {
  const entryAt = Number(st.header.l1TableOffset) + index * 8;
  if (l2Offset % st.geometry.clusterSize !== 0) {
    throw corrupt(`L1 entry ${index} points to unaligned L2 table 0x${l2Offset.toString(16)}`, { offset: entryAt });
  }
  return checkHostRange(l2Offset, st.geometry.clusterSize, `L1 entry ${index} points to L2 table 0x${l2Offset.toString(16)}`, entryAt);
}

/** The L2 table mapping a guest offset, 0 when there is none (or the offset is beyond the L1 table). */
export async function l2TableFor(st: Qcow2State, guestOffset: number): Promise<number> {
  const index = l1IndexOf(st, guestOffset);
  if (index >= st.header.l1Size) return 0;
  return checkL2Offset(st, index, (await st.store.l1Entry(index)).l2Offset);
}

/** Refuses an invalid entry with a typed error naming where it is. */
export function validMapping(m: Mapping, clusterStart: number, at: number): Exclude<Mapping, { kind: 'invalid' }> {
  if (m.kind === 'invalid') throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${m.reason}`, { offset: m.at ?? at });
  return m;
}

/** The L2 table and mapping of the guest cluster at `clusterStart`; invalid entries are refused. */
export async function mappingOf(st: Qcow2State, clusterStart: number): Promise<{ l2: number; mapping: Exclude<Mapping, { kind: 'invalid' }> }> {
  const l2 = await l2TableFor(st, clusterStart);
  if (l2 === 0) return { l2, mapping: { kind: 'unallocated' } };
  const index = l2IndexOf(st, clusterStart);
  const mapping = await st.store.l2Entry(l2, index);
  return { l2, mapping: validMapping(mapping, clusterStart, l2 + index * st.geometry.l2EntryBytes) };
}

/**
 * Offset of an L2 table this image may change (refcount 1) for the guest cluster at
 * `guestOffset`: the one there, or a new one, empty or copied from a table a snapshot shares (the
 * snapshot keeps the original). The new table is written before the L1 entry points at it.
 */
export async function writableL2(st: Qcow2State, guestOffset: number): Promise<number> {
  const C = st.geometry.clusterSize;
  const index = l1IndexOf(st, guestOffset);
  if (index >= st.header.l1Size) throw usage(`guest offset 0x${guestOffset.toString(16)} is beyond the L1 table`);
  const l1 = await st.store.l1Entry(index);
  const old = checkL2Offset(st, index, l1.l2Offset);
  if (old !== 0 && l1.copied) return old;
  const fresh = await allocateClusters(st, 1);
  await st.store.newL2Table(fresh, old);
  await st.store.setL1Entry(index, fresh, true);
  if (old !== 0) await adjustRefcount(st, old / C, -1);
  return fresh;
}
