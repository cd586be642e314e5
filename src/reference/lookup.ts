/** From a guest offset to the L2 entry that maps its cluster. */
import { corrupt } from '../errors.js';
import { type L1Slot, type L2Slot, type Mapping, l1Index, readL1Entry, readL2Entry } from './entries.js';
import type { RefState } from './state.js';

export interface Located {
  l1: L1Slot | undefined;
  l2: L2Slot | undefined;
  mapping: Mapping;
}

export async function locate(st: RefState, guestOffset: number): Promise<Located> {
  const g = st.geometry;
  const index = l1Index(st, guestOffset);
  if (index >= st.header.l1Size) return { l1: undefined, l2: undefined, mapping: { kind: 'unallocated' } };
  const l1 = await readL1Entry(st, index);
  if (l1.l2Offset === 0) return { l1, l2: undefined, mapping: { kind: 'unallocated' } };
  const l2 = await readL2Entry(st, l1.l2Offset, Math.floor(guestOffset / g.clusterSize) % g.l2Entries);
  return { l1, l2, mapping: l2.mapping };
}

/**
 * Bytes from `guestOffset` (a cluster start) that share its answer without more lookups: the rest
 * of an L1 entry's range when that entry maps no L2 table, else one cluster.
 */
export function spanOf(st: RefState, located: Located, guestOffset: number): number {
  const C = st.geometry.clusterSize;
  if (located.l2 !== undefined) return C;
  const l1Span = C * st.geometry.l2Entries;
  return l1Span - (guestOffset % l1Span);
}

/** The mapping of a guest cluster, refusing invalid entries with a typed error. */
export async function mappingOf(st: RefState, guestOffset: number): Promise<Located> {
  const located = await locate(st, guestOffset);
  if (located.mapping.kind === 'invalid') {
    throw corrupt(`L2 entry for guest offset 0x${guestOffset.toString(16)}: ${located.mapping.reason}`, {
      offset: located.l2?.at,
    });
  }
  return located;
}
