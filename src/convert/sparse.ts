/**
 * Which parts of a buffer of guest data qemu-img convert writes and which it treats as zeros (a
 * hole, or a write of zeros): QEMU 7.2's is_allocated_sectors_min and is_allocated_sectors, in
 * 512-byte sectors. A run of zero sectors inside data becomes a hole only when it is at least
 * `minSectors` long (`-S`, 8 sectors by default); a buffer that starts with zeros starts with a
 * hole. Run ends are moved to multiples of `alignment` sectors (the largest power of two not above
 * `minSectors`), data ends up, zero ends down, so that writes do not cut through a block.
 */
import { isZero } from '../format/bytes.js';

export const SECTOR = 512;

export interface SparseRun {
  /** Bytes from the start of the previous run (the last run may end in a partial sector). */
  length: number;
  data: boolean;
}

/** The alignment qemu-img derives from the sparse size, in sectors (at least 1). */
export function sparseAlignment(minSectors: number): number {
  return minSectors < 1 ? 1 : 2 ** Math.floor(Math.log2(minSectors));
}

/**
 * The runs of `buf` (its first sector being guest sector `sector`), as convert_co_write walks it:
 * data to write and zeros to leave out. `minSectors` is at least 1.
 */
export function sparseRuns(buf: Uint8Array, sector: number, minSectors: number): SparseRun[] {
  const alignment = sparseAlignment(minSectors);
  const total = Math.ceil(buf.byteLength / SECTOR);
  const zero = new Uint8Array(total);
  // Most sectors of data start with a byte that is not zero: looked at first, a word at a time.
  const words = buf.byteOffset % 4 === 0 ? new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2) : undefined;
  const perSector = SECTOR / 4;
  for (let i = 0; i < total; i++) {
    const from = i * perSector;
    if (words === undefined || from + perSector > words.length) {
      zero[i] = isZero(buf.subarray(i * SECTOR, Math.min(buf.byteLength, (i + 1) * SECTOR))) ? 1 : 0;
      continue;
    }
    let w = from;
    while (w < from + perSector && words[w] === 0) w++;
    zero[i] = w === from + perSector ? 1 : 0;
  }
  const out: SparseRun[] = [];
  for (let at = 0; at < total; ) {
    const { n, data } = allocatedMin(zero, at, total - at, minSectors, sector + at, alignment);
    const end = Math.min(buf.byteLength, (at + n) * SECTOR);
    const last = out[out.length - 1];
    if (last && last.data === data) last.length += end - at * SECTOR;
    else out.push({ length: end - at * SECTOR, data });
    at += n;
  }
  return out;
}

/** is_allocated_sectors: the run of equal sectors from `from` (of `n`), its end aligned. */
function allocated(zero: Uint8Array, from: number, n: number, sector: number, alignment: number): { n: number; data: boolean } {
  if (n <= 0) return { n: 0, data: false };
  let isZeroRun = zero[from] === 1;
  let i = 1;
  while (i < n && (zero[from + i] === 1) === isZeroRun) i++;
  if (i === n) return { n: i, data: !isZeroRun };
  const tail = (sector + i) % alignment;
  if (tail) {
    // The next sector is data, and rewrites this tail anyway: write it now.
    if (isZeroRun && i <= tail) isZeroRun = false;
    if (!isZeroRun) i = Math.min(n, i + alignment - tail);
    else i -= tail;
  }
  return { n: i, data: !isZeroRun };
}

/** is_allocated_sectors_min: from data, zero runs shorter than `min` sectors are taken as data. */
function allocatedMin(zero: Uint8Array, from: number, n: number, min: number, sector: number, alignment: number): { n: number; data: boolean } {
  if (n < min) min = n;
  const first = allocated(zero, from, n, sector, alignment);
  if (!first.data) return first;
  let used = first.n;
  let checked = first.n;
  while (checked < n) {
    const r = allocated(zero, from + checked, n - checked, sector + checked, alignment);
    checked += r.n;
    if (r.data) used = checked;
    else if (r.n >= min) break;
  }
  return { n: used, data: true };
}
