/**
 * The write path. Clusters this image owns (COPIED data, or owned and already allocated
 * subclusters) are written in place without the metadata mutex, contiguous host runs as one write.
 * The others go through `writeAllocating` under the mutex: each gets its plan (src/qcow2/
 * write-rules.ts: merged content or a zero fill, host cluster, new entry); the fills are zeroed,
 * then all the data is written (contiguous runs as one write), before any L2 entry changes; old
 * storage is released after.
 * The caller holds the range lock on the clusters.
 */
import { corrupt } from '../errors.js';
import { hasHostCluster, type Mapping, subclusterMask } from '../qcow2/mapping.js';
import { releaseMapping } from '../qcow2/refcounts.js';
import { l1IndexOf, l2IndexOf, writableL2 } from '../qcow2/tables.js';
import { type ClusterWrite, type HostRun, type PriorContent, planClusterWrite, planSubclusterWrite, type ZeroFill } from '../qcow2/write-rules.js';
import { mappingOf, setEntry } from './l2.js';
import { metadataAt } from './overlap.js';
import { readBelow, readInCluster } from './read.js';
import { sectorAligned, storedBytes } from '../qcow2/crypt-data.js';
import type { OptState } from './state.js';

/** Refuses a guest data write (or zero fill) of `length` bytes at `host` that would land on metadata. */
function checkDataTarget(st: OptState, host: number, length: number): void {
  const C = st.geometry.clusterSize;
  for (let at = host - (host % C); at < host + length; at += C) {
    const what = metadataAt(st, at);
    if (what) throw corrupt(`a guest data write to host offset 0x${at.toString(16)} would overwrite ${what}`, { offset: at });
  }
}

/** Zeroes the plans' fills (BlockFile.zeroRange), before their runs are written into them. */
async function zeroFills(st: OptState, fills: ZeroFill[]): Promise<void> {
  for (const z of fills) checkDataTarget(st, z.host, z.length);
  const file = st.dataFile ?? st.file;
  await Promise.all(fills.map((z) => file.zeroRange(z.host, z.length, 'data')));
}

/** Writes host runs, merging those that continue each other into one BlockFile write. */
export async function writeHostRuns(st: OptState, runs: HostRun[]): Promise<void> {
  for (const r of runs) checkDataTarget(st, r.host, r.bytes.byteLength);
  const merged: { host: number; parts: Uint8Array[]; len: number }[] = [];
  for (const plain of runs) {
    const r = st.crypto === undefined ? plain : { host: plain.host, bytes: storedBytes(st.crypto, plain.host, plain.bytes) };
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

/** True when this piece can be written at the mapping's host offset as it is. */
function inPlace(st: OptState, m: Mapping, clusterStart: number, inCluster: number, n: number): m is Extract<Mapping, { hostOffset: number }> {
  if (!st.l1Copied[l1IndexOf(st, clusterStart)]) return false;
  if (m.kind === 'normal') return m.copied && !st.geometry.extendedL2;
  if (m.kind !== 'subclusters' || !m.copied || !hasHostCluster(st, m)) return false;
  const touched = subclusterMask(st.geometry.subclusterSize, inCluster, inCluster + n);
  return (touched & ~m.alloc) === 0;
}

export async function writeGuest(st: OptState, guestOffset: number, guestData: Uint8Array, holdingMeta = false): Promise<void> {
  const { offset, data } = await sectorAligned(st, guestOffset, guestData);
  const C = st.geometry.clusterSize;
  const fast: HostRun[] = [];
  const slow: Piece[] = [];
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

interface Piece {
  clusterStart: number;
  inCluster: number;
  bytes: Uint8Array;
}

function priorContent(st: OptState): PriorContent {
  return {
    readMapped: (m, clusterStart, inCluster, n) => readInCluster(st, m, clusterStart, inCluster, n),
    readBelow: (guestOffset, n) => readBelow(st, guestOffset, n),
  };
}

async function writeAllocating(st: OptState, pieces: Piece[]): Promise<void> {
  const data: HostRun[] = [];
  const fills: ZeroFill[] = [];
  const pending: (ClusterWrite & { l2: number; index: number })[] = [];
  const prior = priorContent(st);
  for (const { clusterStart, inCluster, bytes } of pieces) {
    const l2 = await writableL2(st, clusterStart);
    const index = l2IndexOf(st, clusterStart);
    const { mapping } = await mappingOf(st, clusterStart);
    if (mapping.kind === 'normal' && mapping.copied) {
      data.push({ host: mapping.hostOffset + inCluster, bytes });
      continue;
    }
    if (mapping.kind === 'subclusters') {
      // Its runs are written (in host order) and its entry set before the next piece is planned.
      const plan = await planSubclusterWrite(st, mapping, clusterStart, inCluster, bytes, prior);
      await writeHostRuns(st, plan.runs.sort((a, b) => a.host - b.host));
      await setEntry(st, l2, index, plan.entry);
      if (plan.release) await releaseMapping(st, plan.release);
      continue;
    }
    const plan = await planClusterWrite(st, mapping, clusterStart, inCluster, bytes, prior);
    if (plan.zero) fills.push(plan.zero);
    data.push(...plan.runs);
    pending.push({ ...plan, l2, index });
  }
  await zeroFills(st, fills);
  await writeHostRuns(st, data);
  for (const p of pending) await setEntry(st, p.l2, p.index, p.entry);
  for (const p of pending) if (p.release) await releaseMapping(st, p.release);
  await st.order.trim();
}
