/**
 * The reference write path. Order of every step, so a crash leaves at worst a leak: new data is
 * written before the L2 entry that points to it, refcounts are raised before the entry and dropped
 * after it.
 */
import { corrupt } from '../errors.js';
import { readL2Entry, type Mapping, writeL2Entry } from './entries.js';
import { l2EntryAt, writableL2 } from './l2-table.js';
import { readBelow, readInCluster } from './read.js';
import { allocateDataCluster, hasHostCluster, releaseMapping } from './release.js';
import type { RefState } from './state.js';

export async function writeGuest(st: RefState, offset: number, data: Uint8Array): Promise<void> {
  const C = st.geometry.clusterSize;
  let pos = offset;
  const end = offset + data.byteLength;
  while (pos < end) {
    const clusterStart = pos - (pos % C);
    const n = Math.min(clusterStart + C, end) - pos;
    await writeInCluster(st, clusterStart, pos - clusterStart, data.subarray(pos - offset, pos - offset + n));
    pos += n;
  }
}

/** Host writes of guest data go to the data file when there is one. */
export async function writeHost(st: RefState, hostOffset: number, bytes: Uint8Array): Promise<void> {
  await (st.dataFile ?? st.file).write(hostOffset, bytes, 'data');
}

async function writeInCluster(st: RefState, clusterStart: number, inCluster: number, bytes: Uint8Array): Promise<void> {
  const l2 = await writableL2(st, clusterStart);
  const at = l2EntryAt(st, l2, clusterStart);
  const { mapping } = await readL2Entry(st, l2, (at - l2) / st.geometry.l2EntryBytes);
  if (mapping.kind === 'invalid') {
    throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${mapping.reason}`, { offset: at });
  }
  if (mapping.kind === 'subclusters') return writeSubclusters(st, at, mapping, clusterStart, inCluster, bytes);
  if (mapping.kind === 'normal' && mapping.copied) {
    await writeHost(st, mapping.hostOffset + inCluster, bytes);
    return;
  }
  const C = st.geometry.clusterSize;
  const merged = new Uint8Array(C);
  if (bytes.byteLength < C) merged.set(await readInCluster(st, mapping, clusterStart, 0, C));
  merged.set(bytes, inCluster);
  // A preallocated zero cluster that only we use is written in place.
  const reuse = mapping.kind === 'zero' && hasHostCluster(st, mapping) && mapping.copied;
  const host = reuse ? mapping.hostOffset : await allocateDataCluster(st, clusterStart);
  await writeHost(st, host, merged);
  if (st.geometry.extendedL2) {
    await writeL2Entry(st, at, { kind: 'subclusters', hostOffset: host, copied: true, alloc: 0xffff_ffff, zero: 0 });
  } else {
    await writeL2Entry(st, at, { kind: 'normal', hostOffset: host, copied: true });
  }
  if (!reuse) await releaseMapping(st, mapping);
}

/** Bit mask of the subclusters that bytes [from, to) of a cluster touch. */
export function subclusterMask(st: RefState, from: number, to: number): number {
  const S = st.geometry.subclusterSize;
  let mask = 0;
  for (let sc = Math.floor(from / S); sc <= Math.floor((to - 1) / S); sc++) mask = (mask | (1 << sc)) >>> 0;
  return mask;
}

const has = (mask: number, sc: number) => ((mask >>> sc) & 1) === 1;

/**
 * Extended L2: only the subclusters the write touches become allocated. A shared cluster is copied
 * first (its allocated subclusters only); a partly written subcluster is completed from what it
 * read as before.
 */
async function writeSubclusters(
  st: RefState,
  at: number,
  m: Extract<Mapping, { kind: 'subclusters' }>,
  clusterStart: number,
  inCluster: number,
  bytes: Uint8Array,
): Promise<void> {
  const S = st.geometry.subclusterSize;
  const touched = subclusterMask(st, inCluster, inCluster + bytes.byteLength);
  const owned = hasHostCluster(st, m) && m.copied;
  const host = owned ? m.hostOffset : await allocateDataCluster(st, clusterStart);
  if (!owned && hasHostCluster(st, m)) {
    // Copy the allocated subclusters we do not overwrite whole out of the shared cluster.
    for (let sc = 0; sc < 32; sc++) {
      if (has(m.alloc, sc) && !has(touched, sc)) {
        await writeHost(st, host + sc * S, await readInCluster(st, m, clusterStart, sc * S, S));
      }
    }
  }
  for (let sc = 0; sc < 32; sc++) {
    if (!has(touched, sc)) continue;
    const from = Math.max(inCluster, sc * S);
    const to = Math.min(inCluster + bytes.byteLength, (sc + 1) * S);
    const piece = bytes.subarray(from - inCluster, to - inCluster);
    if (owned && has(m.alloc, sc)) {
      await writeHost(st, host + from, piece);
      continue;
    }
    const full = new Uint8Array(S);
    if (to - from < S) full.set(await subclusterBefore(st, m, clusterStart, sc));
    full.set(piece, from - sc * S);
    await writeHost(st, host + sc * S, full);
  }
  await writeL2Entry(st, at, {
    kind: 'subclusters',
    hostOffset: host,
    copied: true,
    alloc: (m.alloc | touched) >>> 0,
    zero: (m.zero & ~touched) >>> 0,
  });
  if (!owned) await releaseMapping(st, m);
}

async function subclusterBefore(
  st: RefState,
  m: Extract<Mapping, { kind: 'subclusters' }>,
  clusterStart: number,
  sc: number,
): Promise<Uint8Array> {
  const S = st.geometry.subclusterSize;
  if (has(m.zero, sc)) return new Uint8Array(S);
  if (has(m.alloc, sc)) return readInCluster(st, m, clusterStart, sc * S, S);
  return readBelow(st, clusterStart + sc * S, S);
}
