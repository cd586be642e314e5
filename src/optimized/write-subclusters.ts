/**
 * Extended L2 writes (the reference engine's semantics): only touched subclusters become
 * allocated; a shared cluster is copied first (its allocated subclusters only); a partly written
 * subcluster is completed from what it read as before. The metadata mutex is held.
 */
import { hasHostCluster, type Mapping } from './entries.js';
import { setEntry } from './l2.js';
import { readBelow, readInCluster } from './read.js';
import { allocateDataCluster } from './refcounts.js';
import { releaseMapping } from './release.js';
import type { OptState } from './state.js';
import { has, subclusterMask, writeHostRuns } from './write.js';

type Sub = Extract<Mapping, { kind: 'subclusters' }>;

export async function writeSubclusters(
  st: OptState,
  l2: number,
  index: number,
  m: Sub,
  clusterStart: number,
  inCluster: number,
  bytes: Uint8Array,
): Promise<void> {
  const S = st.geometry.subclusterSize;
  const touched = subclusterMask(st, inCluster, inCluster + bytes.byteLength);
  const owned = hasHostCluster(st, m) && m.copied;
  const host = owned ? m.hostOffset : await allocateDataCluster(st, clusterStart);
  const runs: { host: number; bytes: Uint8Array }[] = [];
  if (!owned && hasHostCluster(st, m)) {
    for (let sc = 0; sc < 32; sc++) {
      if (has(m.alloc, sc) && !has(touched, sc)) runs.push({ host: host + sc * S, bytes: await readInCluster(st, m, clusterStart, sc * S, S) });
    }
  }
  for (let sc = 0; sc < 32; sc++) {
    if (!has(touched, sc)) continue;
    const from = Math.max(inCluster, sc * S);
    const to = Math.min(inCluster + bytes.byteLength, (sc + 1) * S);
    const piece = bytes.subarray(from - inCluster, to - inCluster);
    if (owned && has(m.alloc, sc)) {
      runs.push({ host: host + from, bytes: piece });
      continue;
    }
    const full = new Uint8Array(S);
    if (to - from < S) full.set(await subclusterBefore(st, m, clusterStart, sc));
    full.set(piece, from - sc * S);
    runs.push({ host: host + sc * S, bytes: full });
  }
  runs.sort((a, b) => a.host - b.host);
  await writeHostRuns(st, runs);
  await setEntry(st, l2, index, {
    kind: 'subclusters',
    hostOffset: host,
    copied: true,
    alloc: (m.alloc | touched) >>> 0,
    zero: (m.zero & ~touched) >>> 0,
  });
  if (!owned) await releaseMapping(st, m);
}

async function subclusterBefore(st: OptState, m: Sub, clusterStart: number, sc: number): Promise<Uint8Array> {
  const S = st.geometry.subclusterSize;
  if (has(m.zero, sc)) return new Uint8Array(S);
  if (has(m.alloc, sc)) return readInCluster(st, m, clusterStart, sc * S, S);
  return readBelow(st, clusterStart + sc * S, S);
}
