/**
 * Persistent bitmaps are not maintained: before the first write the bitmaps extension is dropped
 * (header first) and what consistent bitmaps owned is freed, as the reference engine does.
 */
import { corrupt } from '../errors.js';
import { decodeBitmapDirectory, decodeBitmapTable } from '../format/bitmap.js';
import { writeHeader } from './header.js';
import { adjustRange } from './refcounts.js';
import type { OptState } from './state.js';

export async function bitmapRanges(st: OptState): Promise<{ offset: number; length: number }[]> {
  const ext = st.extensions.find((e) => e.kind === 'bitmaps');
  const owned: { offset: number; length: number }[] = [];
  if (ext && ext.kind === 'bitmaps' && st.features.bitmapsConsistent) {
    const C = st.geometry.clusterSize;
    const dirOffset = Number(ext.directoryOffset);
    const dirBytes = Number(ext.directorySize);
    owned.push({ offset: dirOffset, length: dirBytes });
    const { entries } = decodeBitmapDirectory(await st.file.read(dirOffset, dirBytes), ext.nbBitmaps, dirOffset);
    for (const b of entries) {
      const tableOffset = Number(b.bitmapTableOffset);
      if (tableOffset % C !== 0) throw corrupt(`bitmap '${b.name}' table at unaligned offset 0x${tableOffset.toString(16)}`);
      owned.push({ offset: tableOffset, length: b.bitmapTableSize * 8 });
      const table = decodeBitmapTable(await st.file.read(tableOffset, b.bitmapTableSize * 8), b.bitmapTableSize);
      for (const e of table) if (e.hostOffset !== 0) owned.push({ offset: e.hostOffset, length: C });
    }
  }
  return owned;
}

export async function dropBitmaps(st: OptState): Promise<void> {
  const owned = await bitmapRanges(st);
  st.extensions = st.extensions.filter((e) => e.kind !== 'bitmaps');
  await writeHeader(st);
  for (const range of owned) if (range.length > 0) await adjustRange(st, range.offset, range.length, -1);
}
