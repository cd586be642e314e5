/**
 * The bitmaps extension before the first change to an image. Consistent bitmaps (autoclear bit 0)
 * are kept: loaded and marked in_use (dirty-bitmaps.ts). Stale ones (bit 0 clear: a program that
 * does not keep bitmaps wrote the image) are dropped, as QEMU drops them: the extension goes, and
 * since their clusters may have been reused, nothing is freed. Every autoclear bit we do not
 * maintain is cleared, as the spec requires.
 */
import { corrupt } from '../errors.js';
import { AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW } from '../format/constants.js';
import { loadBitmaps, markBitmapsInUse } from './dirty-bitmaps.js';
import { writeHeader } from './header.js';
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

/** Before the first change to an image (module comment); refuses, with nothing written, bitmaps it cannot keep. */
export async function beforeFirstChange(st: Qcow2State): Promise<void> {
  const tracked = await loadBitmaps(st);
  const stale = !tracked && st.extensions.some((e) => e.kind === 'bitmaps');
  const keep = st.header.autoclearFeatures & (AUTOCLEAR_DATA_FILE_RAW | (tracked ? AUTOCLEAR_BITMAPS : 0n));
  if (stale) {
    st.extensions = st.extensions.filter((e) => e.kind !== 'bitmaps');
    st.activeBitmaps = false;
  }
  if (stale || keep !== st.header.autoclearFeatures) {
    st.header.autoclearFeatures = keep;
    await writeHeader(st);
  }
  if (tracked) await markBitmapsInUse(st, tracked);
}
