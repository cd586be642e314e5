/**
 * The reference write path, one cluster at a time. Order of every step, so a crash leaves at worst
 * a leak: new data is written before the L2 entry that points to it, refcounts are raised before
 * the entry and dropped after it (each step is durable before the next, durable-file.ts).
 */
import { releaseMapping } from '../qcow2/refcounts.js';
import { l2IndexOf, validMapping, writableL2 } from '../qcow2/tables.js';
import { type PriorContent, planClusterWrite, planSubclusterWrite } from '../qcow2/write-rules.js';
import { readL2Entry, writeL2Entry } from './entries.js';
import { readBelow, readInCluster } from './read.js';
import { sectorAligned, storedBytes } from '../qcow2/crypt-data.js';
import type { RefState } from './state.js';

export async function writeGuest(st: RefState, guestOffset: number, guestData: Uint8Array): Promise<void> {
  const { offset, data } = await sectorAligned(st, guestOffset, guestData);
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
  await (st.dataFile ?? st.file).write(hostOffset, storedBytes(st.crypto, hostOffset, bytes), 'data');
}

export function priorContent(st: RefState): PriorContent {
  return {
    readMapped: (m, clusterStart, inCluster, n) => readInCluster(st, m, clusterStart, inCluster, n),
    readBelow: (guestOffset, n) => readBelow(st, guestOffset, n),
  };
}

async function writeInCluster(st: RefState, clusterStart: number, inCluster: number, bytes: Uint8Array): Promise<void> {
  const l2 = await writableL2(st, clusterStart);
  const index = l2IndexOf(st, clusterStart);
  const mapping = validMapping(await readL2Entry(st, l2, index), clusterStart, l2 + index * st.geometry.l2EntryBytes);
  if (mapping.kind === 'normal' && mapping.copied) {
    await writeHost(st, mapping.hostOffset + inCluster, bytes);
    return;
  }
  const plan =
    mapping.kind === 'subclusters'
      ? await planSubclusterWrite(st, mapping, clusterStart, inCluster, bytes, priorContent(st))
      : await planClusterWrite(st, mapping, clusterStart, inCluster, bytes, priorContent(st));
  if (plan.zero) await (st.dataFile ?? st.file).zeroRange(plan.zero.host, plan.zero.length, 'data');
  for (const run of plan.runs) await writeHost(st, run.host, run.bytes);
  await writeL2Entry(st, l2, index, plan.entry);
  if (plan.release) await releaseMapping(st, plan.release);
}
