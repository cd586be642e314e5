/**
 * Persistent bitmaps are not maintained by our engines. Before the first write, the spec requires
 * clearing autoclear bit 0 (the bitmaps become stale) and every autoclear bit we do not know; we
 * also drop the bitmaps extension and free the clusters it owned (directory, bitmap tables and
 * bitmap data) so the image does not leak them. The header goes first: a crash in between leaves
 * leaks, never a dangling reference.
 */
import { corrupt } from '../errors.js';
import { AUTOCLEAR_DATA_FILE_RAW } from '../format/constants.js';
import { writeHeader } from './header.js';
import { adjustRange } from './refcounts.js';
import type { Qcow2State } from './state.js';

/** The byte ranges consistent bitmaps own: directory, tables and data clusters. */
export async function bitmapRanges(st: Qcow2State): Promise<{ offset: number; length: number }[]> {
  const ext = st.extensions.find((e) => e.kind === 'bitmaps');
  const owned: { offset: number; length: number }[] = [];
  if (ext && ext.kind === 'bitmaps' && st.features.bitmapsConsistent) {
    const C = st.geometry.clusterSize;
    const dirOffset = Number(ext.directoryOffset);
    const dirBytes = Number(ext.directorySize);
    owned.push({ offset: dirOffset, length: dirBytes });
    for (const b of await st.store.readBitmapDirectory(dirOffset, dirBytes, ext.nbBitmaps)) {
      if (b.tableOffset % C !== 0) throw corrupt(`bitmap '${b.name}' table at unaligned offset 0x${b.tableOffset.toString(16)}`);
      owned.push({ offset: b.tableOffset, length: b.tableEntries * 8 });
      for (const host of await st.store.readBitmapTable(b.tableOffset, b.tableEntries)) if (host !== 0) owned.push({ offset: host, length: C });
    }
  }
  return owned;
}

async function dropBitmaps(st: Qcow2State): Promise<void> {
  const owned = await bitmapRanges(st);
  st.extensions = st.extensions.filter((e) => e.kind !== 'bitmaps');
  await writeHeader(st);
  for (const range of owned) if (range.length > 0) await adjustRange(st, range.offset, range.length, -1);
}

/** Before the first change to an image: the autoclear bits we do not maintain are cleared. */
export async function clearAutoclear(st: Qcow2State): Promise<void> {
  const keep = st.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW;
  const hasBitmaps = st.extensions.some((e) => e.kind === 'bitmaps');
  if (st.header.autoclearFeatures === keep && !hasBitmaps) return;
  st.header.autoclearFeatures = keep;
  st.activeBitmaps = false;
  if (hasBitmaps) await dropBitmaps(st); // frees what the bitmaps owned only if they were consistent
  else await writeHeader(st);
  st.features.bitmapsConsistent = false;
}
