/** Address arithmetic derived from a validated header. Units are in the names. */
import { SUBCLUSTERS_PER_CLUSTER } from './constants.js';

export interface Geometry {
  clusterBits: number;
  clusterSize: number;
  extendedL2: boolean;
  /** L2 entries per table: cluster_size / 8, or / 16 with extended L2. */
  l2Entries: number;
  l2EntryBytes: number;
  subclusterSize: number;
  refcountOrder: number;
  /** Refcounts per refcount block. */
  refcountBlockEntries: number;
  virtualSize: number;
}

export function geometry(clusterBits: number, extendedL2: boolean, refcountOrder: number, virtualSize: number): Geometry {
  const clusterSize = 2 ** clusterBits;
  const l2EntryBytes = extendedL2 ? 16 : 8;
  return {
    clusterBits,
    clusterSize,
    extendedL2,
    l2Entries: clusterSize / l2EntryBytes,
    l2EntryBytes,
    subclusterSize: extendedL2 ? clusterSize / SUBCLUSTERS_PER_CLUSTER : clusterSize,
    refcountOrder,
    refcountBlockEntries: 2 ** (clusterBits + 3 - refcountOrder),
    virtualSize,
  };
}

/** L1 entries needed to map `virtualSize` bytes. */
export function l1EntriesFor(virtualSize: number, g: Pick<Geometry, 'clusterSize' | 'l2Entries'>): number {
  const guestClusters = Math.ceil(virtualSize / g.clusterSize);
  return Math.ceil(guestClusters / g.l2Entries);
}

export function l1Index(guestOffset: number, g: Geometry): number {
  return Math.floor(guestOffset / g.clusterSize / g.l2Entries);
}

export function l2Index(guestOffset: number, g: Geometry): number {
  return Math.floor(guestOffset / g.clusterSize) % g.l2Entries;
}

export function offsetInCluster(offset: number, g: Pick<Geometry, 'clusterSize'>): number {
  return offset % g.clusterSize;
}

export function isClusterAligned(offset: number | bigint, clusterBits: number): boolean {
  return BigInt(offset) % (1n << BigInt(clusterBits)) === 0n;
}
