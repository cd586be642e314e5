/**
 * The metadata a guest data write must never land on (QEMU's overlap check in its default
 * 'cached' mode): the header, the active L1 table, the refcount table, refcount blocks, active
 * L2 tables and the snapshot table. Reaching one means an L2 entry points into metadata: the
 * image is corrupt, and the write is refused before it destroys anything.
 */
import type { OptState } from './state.js';

/** What the host cluster holding `hostOffset` is, if it is metadata. */
export function metadataAt(st: OptState, hostOffset: number): string | undefined {
  if (st.features.externalDataFile) return undefined;
  const C = st.geometry.clusterSize;
  const c = Math.floor(hostOffset / C);
  const within = (offset: number, length: number) => length > 0 && c >= Math.floor(offset / C) && c <= Math.floor((offset + length - 1) / C);
  const h = st.header;
  if (c === 0) return 'the header';
  if (within(Number(h.l1TableOffset), h.l1Size * 8)) return 'the active L1 table';
  if (within(Number(h.refcountTableOffset), h.refcountTableClusters * C)) return 'the refcount table';
  if (h.nbSnapshots > 0 && within(Number(h.snapshotsOffset), st.snapshotTableBytes)) return 'the snapshot table';
  const at = c * C;
  if (st.refcountTable.includes(at)) return 'a refcount block';
  if (st.l1Offsets.includes(at)) return 'an L2 table';
  return undefined;
}
