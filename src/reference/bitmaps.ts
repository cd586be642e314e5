/**
 * Persistent bitmaps are not maintained by our engines. Before the first write, the spec requires
 * clearing autoclear bit 0 (the bitmaps become stale); we also drop the bitmaps extension and free
 * the clusters it owned — directory, bitmap tables and bitmap data — so the image does not leak
 * them. The header goes first: a crash in between leaves leaks, never a dangling reference.
 */
import { corrupt } from '../errors.js';
import { parseBitmapDirectory, parseBitmapTable } from '../spec/kaitai.js';
import { adjustRange } from './refcounts.js';
import { type RefState, writeHeader } from './state.js';

/** The byte ranges consistent bitmaps own: directory, tables and data clusters. */
export async function bitmapRanges(st: RefState): Promise<{ offset: number; length: number }[]> {
  const ext = st.extensions.find((e) => e.kind === 'bitmaps');
  const owned: { offset: number; length: number }[] = [];
  if (ext && ext.kind === 'bitmaps' && st.features.bitmapsConsistent) {
    const C = st.geometry.clusterSize;
    const dirOffset = Number(ext.directoryOffset);
    const dirBytes = Number(ext.directorySize);
    owned.push({ offset: dirOffset, length: dirBytes });
    const directory = parseBitmapDirectory(await st.file.read(dirOffset, dirBytes), ext.nbBitmaps);
    for (const b of directory.entries) {
      const tableOffset = b.bitmapTableOffset;
      if (tableOffset % C !== 0) throw corrupt(`bitmap '${b.name}' table at unaligned offset 0x${tableOffset.toString(16)}`);
      owned.push({ offset: tableOffset, length: b.bitmapTableSize * 8 });
      const table = parseBitmapTable(await st.file.read(tableOffset, b.bitmapTableSize * 8), b.bitmapTableSize);
      for (const e of table.entries) if (e.offset !== 0) owned.push({ offset: e.offset, length: C });
    }
  }
  return owned;
}

export async function dropBitmaps(st: RefState): Promise<void> {
  const owned = await bitmapRanges(st);
  st.extensions = st.extensions.filter((e) => e.kind !== 'bitmaps');
  await writeHeader(st);
  await st.file.flush();
  for (const range of owned) if (range.length > 0) await adjustRange(st, range.offset, range.length, -1);
}
