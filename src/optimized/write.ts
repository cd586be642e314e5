/**
 * The write path. Clusters this image owns (COPIED data, or owned and already allocated
 * subclusters) are written in place without the metadata mutex, contiguous host runs as one write.
 * The others go through `writeAllocating` under the mutex: each gets its merged cluster content
 * (copy-on-write from what it read as) and a host cluster; the data is written (contiguous runs as
 * one write) before the L2 entries change; old storage is released after.
 * The caller holds the range lock on the clusters.
 */
import { corrupt } from '../errors.js';
import { hasHostCluster, type Mapping, type NewL2Entry } from './entries.js';
import { metadataAt } from './overlap.js';
import { l2IndexOf, mappingOf, setEntry, writableL2, l1IndexOf } from './l2.js';
import { readInCluster } from './read.js';
import { allocateDataCluster } from './refcounts.js';
import { releaseMapping } from './release.js';
import type { OptState } from './state.js';
import { writeSubclusters } from './write-subclusters.js';

interface HostWrite {
  host: number;
  bytes: Uint8Array;
}

/** Writes host runs, merging those that continue each other into one BlockFile write. */
export async function writeHostRuns(st: OptState, runs: HostWrite[]): Promise<void> {
  const C = st.geometry.clusterSize;
  for (const r of runs) {
    for (let at = r.host - (r.host % C); at < r.host + r.bytes.byteLength; at += C) {
      const what = metadataAt(st, at);
      if (what) throw corrupt(`a guest data write to host offset 0x${at.toString(16)} would overwrite ${what}`, { offset: at });
    }
  }
  const merged: { host: number; parts: Uint8Array[]; len: number }[] = [];
  for (const r of runs) {
    const last = merged[merged.length - 1];
    if (last && last.host + last.len === r.host) {
      last.parts.push(r.bytes);
      last.len += r.bytes.byteLength;
    } else merged.push({ host: r.host, parts: [r.bytes], len: r.bytes.byteLength });
  }
  const file = st.dataFile ?? st.file;
  await Promise.all(
    merged.map((m) => {
      if (m.parts.length === 1) return file.write(m.host, m.parts[0]!, 'data');
      const buf = new Uint8Array(m.len);
      let at = 0;
      for (const p of m.parts) {
        buf.set(p, at);
        at += p.byteLength;
      }
      return file.write(m.host, buf, 'data');
    }),
  );
}

const has = (mask: number, sc: number) => ((mask >>> sc) & 1) === 1;

export function subclusterMask(st: OptState, from: number, to: number): number {
  const S = st.geometry.subclusterSize;
  let mask = 0;
  for (let sc = Math.floor(from / S); sc <= Math.floor((to - 1) / S); sc++) mask = (mask | (1 << sc)) >>> 0;
  return mask;
}

/** True when this piece can be written at the mapping's host offset as it is. */
function inPlace(st: OptState, m: Mapping, clusterStart: number, inCluster: number, n: number): m is Extract<Mapping, { hostOffset: number }> {
  if (!st.l1Copied[l1IndexOf(st, clusterStart)]) return false;
  if (m.kind === 'normal') return m.copied && !st.geometry.extendedL2;
  if (m.kind !== 'subclusters' || !m.copied || !hasHostCluster(st, m)) return false;
  const touched = subclusterMask(st, inCluster, inCluster + n);
  return (touched & ~m.alloc) === 0;
}

export async function writeGuest(st: OptState, offset: number, data: Uint8Array, holdingMeta = false): Promise<void> {
  const C = st.geometry.clusterSize;
  const fast: HostWrite[] = [];
  const slow: { clusterStart: number; inCluster: number; bytes: Uint8Array }[] = [];
  const end = offset + data.byteLength;
  for (let pos = offset; pos < end; ) {
    const clusterStart = pos - (pos % C);
    const n = Math.min(clusterStart + C, end) - pos;
    const bytes = data.subarray(pos - offset, pos - offset + n);
    const { mapping } = await mappingOf(st, clusterStart);
    if (inPlace(st, mapping, clusterStart, pos - clusterStart, n)) fast.push({ host: mapping.hostOffset + pos - clusterStart, bytes });
    else slow.push({ clusterStart, inCluster: pos - clusterStart, bytes });
    pos += n;
  }
  await writeHostRuns(st, fast);
  if (slow.length === 0) return;
  const work = () => writeAllocating(st, slow);
  await (holdingMeta ? work() : st.meta.run(work));
}

interface Pending {
  l2: number;
  index: number;
  entry: NewL2Entry;
  release: Mapping | undefined;
}

async function writeAllocating(st: OptState, pieces: { clusterStart: number; inCluster: number; bytes: Uint8Array }[]): Promise<void> {
  const C = st.geometry.clusterSize;
  const data: HostWrite[] = [];
  const pending: Pending[] = [];
  for (const { clusterStart, inCluster, bytes } of pieces) {
    const l2 = await writableL2(st, clusterStart);
    const index = l2IndexOf(st, clusterStart);
    const { mapping } = await mappingOf(st, clusterStart);
    if (mapping.kind === 'subclusters') {
      await writeSubclusters(st, l2, index, mapping, clusterStart, inCluster, bytes);
      continue;
    }
    if (mapping.kind === 'invalid') throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${mapping.reason}`, { offset: l2 + index * st.geometry.l2EntryBytes });
    if (mapping.kind === 'normal' && mapping.copied) {
      data.push({ host: mapping.hostOffset + inCluster, bytes });
      continue;
    }
    const merged = new Uint8Array(C);
    if (bytes.byteLength < C) merged.set(await readInCluster(st, mapping, clusterStart, 0, C));
    merged.set(bytes, inCluster);
    const reuse = mapping.kind === 'zero' && hasHostCluster(st, mapping) && mapping.copied;
    const host = reuse ? mapping.hostOffset : await allocateDataCluster(st, clusterStart);
    data.push({ host, bytes: merged });
    const entry: NewL2Entry = st.geometry.extendedL2
      ? { kind: 'subclusters', hostOffset: host, copied: true, alloc: 0xffff_ffff, zero: 0 }
      : { kind: 'normal', hostOffset: host, copied: true };
    pending.push({ l2, index, entry, release: reuse ? undefined : mapping });
  }
  await writeHostRuns(st, data);
  for (const p of pending) await setEntry(st, p.l2, p.index, p.entry);
  for (const p of pending) if (p.release) await releaseMapping(st, p.release);
  await st.order.trim();
}

export { has };
