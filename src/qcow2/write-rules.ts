/**
 * What a guest write does to a cluster that it cannot simply overwrite in place: which host
 * cluster takes the data, what is copied into it first, and the entry that then maps it. The
 * engines carry these plans out in their own order (the reference one write at a time, the
 * optimized one in merged runs under its locks).
 */
import { unsupported, usage } from '../errors.js';
import { fullClusterEntry, hasBit, hasHostCluster, type Mapping, type NewL2Entry, subclusterMask } from './mapping.js';
import { allocateDataCluster } from './refcounts.js';
import type { Qcow2State } from './state.js';

export interface HostRun {
  host: number;
  bytes: Uint8Array;
}

/** A host range made to read as zeros (BlockFile.zeroRange) before a plan's runs are written. */
export interface ZeroFill {
  host: number;
  length: number;
}

/**
 * A planned change of one cluster: the zero fill, then the data runs (the fill first: they land in
 * it), then the entry, then release the old storage.
 */
export interface ClusterWrite {
  zero?: ZeroFill;
  runs: HostRun[];
  entry: NewL2Entry;
  /** The mapping whose storage is released once the entry is in place (none when it was reused). */
  release: Mapping | undefined;
}

/** How a plan reads what a cluster held before (copy-on-write sources). */
export interface PriorContent {
  /** `n` bytes at `inCluster` of the guest cluster at `clusterStart`, as `m` maps them. */
  readMapped(m: Mapping, clusterStart: number, inCluster: number, n: number): Promise<Uint8Array>;
  /** What lies under this layer (the backing file, or zeros). */
  readBelow(guestOffset: number, n: number): Promise<Uint8Array>;
}

/**
 * A write of `bytes` at `inCluster` into a standard cluster that is not ours to overwrite: the
 * whole cluster is written (merged with what it read as) to a new host cluster — or, for a
 * preallocated zero cluster only we use, to that one in place. When the rest of the cluster reads
 * as zeros and the file zeroes ranges without writing them (fallocate), the host cluster is zeroed
 * that way and only the guest's bytes are written (QEMU does the same for such writes): an
 * allocating 4 KiB write then costs a 4 KiB write, not a 64 KiB one.
 */
export async function planClusterWrite(
  st: Qcow2State,
  m: Exclude<Mapping, { kind: 'invalid' | 'subclusters' }>,
  clusterStart: number,
  inCluster: number,
  bytes: Uint8Array,
  prior: PriorContent,
): Promise<ClusterWrite> {
  const C = st.geometry.clusterSize;
  const reuse = m.kind === 'zero' && hasHostCluster(st, m) && m.copied;
  const host = reuse ? m.hostOffset : await allocateDataCluster(st, clusterStart);
  const entry = fullClusterEntry(st.geometry, host);
  const release = reuse ? undefined : m;
  // Not on an encrypted image: zeroed host bytes would decrypt to noise (the fill is encrypted zeros there).
  if (bytes.byteLength < C && priorReadsZero(st, m) && st.crypto === undefined && (st.dataFile ?? st.file).capabilities.zeroRange) {
    return { zero: { host, length: C }, runs: [{ host: host + inCluster, bytes }], entry, release };
  }
  const merged = new Uint8Array(C);
  if (bytes.byteLength < C) merged.set(await prior.readMapped(m, clusterStart, 0, C));
  merged.set(bytes, inCluster);
  return { runs: [{ host, bytes: merged }], entry, release };
}

/** True when every byte of a cluster mapped as `m` reads as zero, known without reading it. */
function priorReadsZero(st: Qcow2State, m: Mapping): boolean {
  return m.kind === 'zero' || (m.kind === 'unallocated' && st.backing === undefined);
}

/**
 * Extended L2: only the subclusters the write touches become allocated. A shared cluster is copied
 * first (its allocated subclusters only); a partly written subcluster is completed from what it
 * read as before. Runs come out in host order.
 */
export async function planSubclusterWrite(
  st: Qcow2State,
  m: Extract<Mapping, { kind: 'subclusters' }>,
  clusterStart: number,
  inCluster: number,
  bytes: Uint8Array,
  prior: PriorContent,
): Promise<ClusterWrite> {
  const S = st.geometry.subclusterSize;
  const touched = subclusterMask(S, inCluster, inCluster + bytes.byteLength);
  const owned = hasHostCluster(st, m) && m.copied;
  const host = owned ? m.hostOffset : await allocateDataCluster(st, clusterStart);
  const runs: HostRun[] = [];
  for (let sc = 0; sc < 32; sc++) {
    if (!hasBit(touched, sc)) {
      // An allocated subcluster of a shared cluster that the write leaves alone is copied over.
      if (!owned && hasHostCluster(st, m) && hasBit(m.alloc, sc)) runs.push({ host: host + sc * S, bytes: await prior.readMapped(m, clusterStart, sc * S, S) });
      continue;
    }
    const from = Math.max(inCluster, sc * S);
    const to = Math.min(inCluster + bytes.byteLength, (sc + 1) * S);
    const piece = bytes.subarray(from - inCluster, to - inCluster);
    if (owned && hasBit(m.alloc, sc)) {
      runs.push({ host: host + from, bytes: piece });
      continue;
    }
    const full = new Uint8Array(S);
    if (to - from < S) full.set(await subclusterBefore(m, clusterStart, sc, S, prior));
    full.set(piece, from - sc * S);
    runs.push({ host: host + sc * S, bytes: full });
  }
  const entry: NewL2Entry = { kind: 'subclusters', hostOffset: host, copied: true, alloc: (m.alloc | touched) >>> 0, zero: (m.zero & ~touched) >>> 0 };
  return { runs, entry, release: owned ? undefined : m };
}

function subclusterBefore(m: Extract<Mapping, { kind: 'subclusters' }>, clusterStart: number, sc: number, S: number, prior: PriorContent): Promise<Uint8Array> {
  if (hasBit(m.zero, sc)) return Promise.resolve(new Uint8Array(S));
  if (hasBit(m.alloc, sc)) return prior.readMapped(m, clusterStart, sc * S, S);
  return prior.readBelow(clusterStart + sc * S, S);
}

/**
 * Compressed writes (qemu-io `write -c`, convert -c) cover whole clusters only (or end at the end
 * of the disk), and are impossible with an external data file.
 */
export function checkCompressedWrite(st: Qcow2State, offset: number, length: number): void {
  const C = st.geometry.clusterSize;
  if (st.features.externalDataFile) throw unsupported('compressed writes are not possible with an external data file');
  // On a LUKS image QEMU 7.2 stores compressed clusters as they are (not encrypted; qcow2_co_pwritev_compressed_task
  // has no encryption step, and reads of them decrypt nothing): so do we. qemu-img convert -c refuses encryption (cli/convert.ts).
  if (offset % C !== 0 || (length % C !== 0 && offset + length !== st.geometry.virtualSize)) {
    throw usage('compressed writes must cover whole clusters (or end at the end of the disk)');
  }
}

/** A compressed write never replaces storage the cluster already has (QEMU refuses too). */
export function refuseAllocated(st: Qcow2State, m: Mapping, clusterStart: number): void {
  if (m.kind === 'compressed' || hasHostCluster(st, m)) {
    throw unsupported(`guest cluster 0x${clusterStart.toString(16)} is already allocated: compressed writes cannot overwrite it`);
  }
}
