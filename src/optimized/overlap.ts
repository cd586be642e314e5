/**
 * The metadata a guest data write must never land on (QEMU's overlap check in its default
 * 'cached' mode): the header, the active L1 table, the refcount table, refcount blocks, active
 * L2 tables and the snapshot table. Reaching one means an L2 entry points into metadata: the
 * image is corrupt, and the write is refused before it destroys anything.
 *
 * The clusters are kept in a map built on first use and dropped (`forgetMetadataMap`) right after
 * every change to what it is built from, so a lookup costs one hash probe on the write path.
 */
import type { OptState } from './state.js';

/** What the host cluster holding `hostOffset` is, if it is metadata: for guest data writes (none lands in the image file when there is a data file). */
export function metadataAt(st: OptState, hostOffset: number): string | undefined {
  if (st.features.externalDataFile) return undefined;
  return imageMetadataAt(st, hostOffset);
}

/** What the cluster of the image file holding `hostOffset` is, if it is metadata (MetadataStore.knownMetadataAt). */
export function imageMetadataAt(st: OptState, hostOffset: number): string | undefined {
  st.metadataMap ??= buildMap(st);
  return st.metadataMap.get(Math.floor(hostOffset / st.geometry.clusterSize));
}

/** Call after changing the header, the active L1 table or the refcount table. */
export function forgetMetadataMap(st: OptState): void {
  st.metadataMap = undefined;
}

function buildMap(st: OptState): Map<number, string> {
  const C = st.geometry.clusterSize;
  const h = st.header;
  const map = new Map<number, string>();
  const mark = (offset: number, length: number, what: string) => {
    if (length <= 0) return;
    for (let c = Math.floor(offset / C); c <= Math.floor((offset + length - 1) / C); c++) map.set(c, what);
  };
  for (const b of st.refcountTable) if (b > 0) mark(b, C, 'a refcount block');
  for (const l2 of st.l1Offsets) if (l2 > 0) mark(l2, C, 'an L2 table');
  if (h.nbSnapshots > 0) mark(Number(h.snapshotsOffset), st.snapshotTableBytes, 'the snapshot table');
  mark(Number(h.refcountTableOffset), h.refcountTableClusters * C, 'the refcount table');
  mark(Number(h.l1TableOffset), h.l1Size * 8, 'the active L1 table');
  mark(0, 1, 'the header');
  return map;
}
