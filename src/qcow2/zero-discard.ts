/**
 * Write-zeroes and discard, with QEMU's semantics (block/qcow2-cluster.c, zero_in_l2_slice and
 * discard_in_l2_slice): whole clusters (or subclusters) change their L2 entries; partial pieces of
 * a zero write become explicit zeros; partial pieces of a discard are ignored.
 */
import type { WriteZeroesOptions } from '../engine/types.js';
import { unsupported } from '../errors.js';
import { ZERO_CHUNK_BYTES } from '../limits.js';
import { hasBit, hasHostCluster, isAllocated, type Mapping, type NewL2Entry, subclusterMask } from './mapping.js';
import { releaseMapping } from './refcounts.js';
import type { Qcow2State } from './state.js';
import { l2IndexOf, mappingOf, writableL2 } from './tables.js';

const ALL = 0xffff_ffff;

export async function writeZeroes(st: Qcow2State, offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
  if (opts.fast && (await needsExplicitZeros(st, offset, length))) {
    throw unsupported(`zeroing ${length} bytes at 0x${offset.toString(16)} would write zeros (fast zeroing refused)`);
  }
  // A raw data file must itself read as zeros, and v2 has no zero flag: write real zeros — but a
  // v2 image without a backing file, when it may deallocate (`unmap`), leaves whole clusters
  // unallocated instead, as QEMU's qcow2_subcluster_zeroize resorts to discard there (zeroInCluster;
  // QEMU does so without MAY_UNMAP too, which loses nothing only where nothing is below).
  const v2Discards = st.header.version < 3 && st.backing === undefined && opts.unmap === true;
  if (st.features.dataFileRaw || (st.header.version < 3 && !v2Discards)) return writeExplicitZeros(st, offset, length);
  const { alignedStart, alignedEnd } = alignedUnits(st, offset, length);
  const end = offset + length;
  if (alignedStart >= alignedEnd) return zeroPartial(st, offset, length, opts);
  if (offset < alignedStart) await zeroPartial(st, offset, alignedStart - offset, opts);
  const C = st.geometry.clusterSize;
  for (let pos = alignedStart; pos < alignedEnd; ) {
    const clusterStart = pos - (pos % C);
    const to = Math.min(clusterStart + C, alignedEnd);
    await zeroInCluster(st, clusterStart, pos - clusterStart, to - clusterStart, opts.unmap === true);
    pos = to;
  }
  if (alignedEnd < end) await zeroPartial(st, alignedEnd, end - alignedEnd, opts);
}

/** The (sub)cluster-aligned part of a range; a partial unit at the very end of the disk counts as whole, as in QEMU. */
function alignedUnits(st: Qcow2State, offset: number, length: number): { alignedStart: number; alignedEnd: number } {
  const unit = st.geometry.subclusterSize;
  const end = offset + length;
  const alignedStart = Math.ceil(offset / unit) * unit;
  let alignedEnd = Math.floor(end / unit) * unit;
  if (end === st.geometry.virtualSize && end > alignedEnd) alignedEnd = end;
  return { alignedStart, alignedEnd };
}

/**
 * Whether a zero write of this range would write zero bytes somewhere (NBD FAST_ZERO refuses
 * then): always on v2 and with a raw data file; for partial units at either end; and, with
 * extended L2, for a partial cluster not yet mapped by subclusters.
 */
async function needsExplicitZeros(st: Qcow2State, offset: number, length: number): Promise<boolean> {
  if (length === 0) return false;
  if (st.header.version < 3 || st.features.dataFileRaw) return true;
  const { alignedStart, alignedEnd } = alignedUnits(st, offset, length);
  if (alignedStart !== offset || alignedEnd !== offset + length) return true;
  if (!st.geometry.extendedL2) return false;
  const C = st.geometry.clusterSize;
  for (let pos = alignedStart; pos < alignedEnd; ) {
    const clusterStart = pos - (pos % C);
    const to = Math.min(clusterStart + C, alignedEnd);
    const whole = pos === clusterStart && (to === clusterStart + C || to === st.geometry.virtualSize);
    if (!whole && (await mappingOf(st, clusterStart)).mapping.kind !== 'subclusters') return true;
    pos = to;
  }
  return false;
}

/**
 * A zero write inside one (sub)cluster. As in QEMU: when the rest of that unit already reads as
 * zeros and the unit holds no data of this layer, the whole unit becomes a zero (sub)cluster (in
 * v2 with unmap, an unallocated one); otherwise real zeros are written.
 */
async function zeroPartial(st: Qcow2State, offset: number, length: number, opts: WriteZeroesOptions): Promise<void> {
  const unit = st.geometry.subclusterSize;
  const unitStart = offset - (offset % unit);
  const unitEnd = Math.min(unitStart + unit, st.geometry.virtualSize);
  if (offset + length > unitEnd) return writeExplicitZeros(st, offset, length);
  const C = st.geometry.clusterSize;
  const clusterStart = unitStart - (unitStart % C);
  const { mapping } = await mappingOf(st, clusterStart);
  const sc = (unitStart - clusterStart) / unit;
  const holdsData = mapping.kind === 'normal' || mapping.kind === 'compressed' || (mapping.kind === 'subclusters' && hasBit(mapping.alloc, sc));
  const readsZero = async (from: number, to: number) => from >= to || (await st.store.readGuest(from, to - from)).every((b) => b === 0);
  if (!holdsData && (await readsZero(unitStart, offset)) && (await readsZero(offset + length, unitEnd))) {
    await zeroInCluster(st, clusterStart, unitStart - clusterStart, unitEnd - clusterStart, opts.unmap === true);
    return;
  }
  await writeExplicitZeros(st, offset, length);
}

async function writeExplicitZeros(st: Qcow2State, offset: number, length: number): Promise<void> {
  const chunk = Math.min(length, ZERO_CHUNK_BYTES);
  for (let pos = offset; pos < offset + length; pos += chunk) {
    await st.store.writeGuest(pos, new Uint8Array(Math.min(chunk, offset + length - pos)));
  }
}

/** Zeroes bytes [from, to) of one cluster, both (sub)cluster aligned (v2, without a backing file, unmap: the whole cluster, left unallocated). */
async function zeroInCluster(st: Qcow2State, clusterStart: number, from: number, to: number, unmap: boolean): Promise<void> {
  const C = st.geometry.clusterSize;
  if (st.header.version < 3) return discardCluster(st, clusterStart, false);
  const { mapping } = await mappingOf(st, clusterStart);
  const l2 = await writableL2(st, clusterStart);
  const index = l2IndexOf(st, clusterStart);
  const whole = from === 0 && (to === C || clusterStart + to === st.geometry.virtualSize);
  if (st.geometry.extendedL2 && !whole) {
    if (mapping.kind !== 'subclusters') return writeExplicitZeros(st, clusterStart + from, to - from);
    // zero_l2_subclusters: the range reads as zero, keeps the host cluster.
    const mask = subclusterMask(st.geometry.subclusterSize, from, to);
    await st.store.setL2Entry(l2, index, { ...mapping, alloc: (mapping.alloc & ~mask) >>> 0, zero: (mapping.zero | mask) >>> 0 });
    return;
  }
  const drop = mapping.kind === 'compressed' || (unmap && isAllocated(st, mapping));
  let next: NewL2Entry;
  if (st.geometry.extendedL2) {
    const keep = !drop && mapping.kind === 'subclusters' && hasHostCluster(st, mapping);
    next = { kind: 'subclusters', hostOffset: keep ? mapping.hostOffset : 0, copied: keep ? mapping.copied : false, alloc: 0, zero: ALL };
  } else {
    const keep = !drop && (mapping.kind === 'normal' || mapping.kind === 'zero') && hasHostCluster(st, mapping);
    next = { kind: 'zero', hostOffset: keep ? mapping.hostOffset : 0, copied: keep ? mapping.copied : false };
  }
  await st.store.setL2Entry(l2, index, next);
  if (drop) await releaseMapping(st, mapping);
}

/**
 * Discards whole clusters (QEMU ignores partial ones, except a complete last cluster of a disk
 * whose size is not cluster aligned). Afterwards a v3 cluster reads as zeros; a v2 cluster reads
 * from the backing file, or zeros without one. A `full` discard (QEMU's full_discard, what
 * bdrv_make_empty uses) leaves every cluster unallocated, in v2 and v3 alike: it then reads from
 * the backing file.
 */
export async function discard(st: Qcow2State, offset: number, length: number, full = false): Promise<void> {
  const C = st.geometry.clusterSize;
  const end = offset + length;
  const start = Math.ceil(offset / C) * C;
  let stop = Math.floor(end / C) * C;
  if (end === st.geometry.virtualSize && end > stop && offset <= stop) stop = end;
  for (let clusterStart = start; clusterStart < stop; clusterStart += C) await discardCluster(st, clusterStart, full);
}

async function discardCluster(st: Qcow2State, clusterStart: number, full: boolean): Promise<void> {
  const { mapping } = await mappingOf(st, clusterStart);
  const allocated = isAllocated(st, mapping);
  if (!full && !st.backing && !allocated) return; // already reads as zeros
  if (st.dataFile && st.features.dataFileRaw) {
    // The raw data file must keep reading as the guest does: zeros (a hole where the file system can).
    const n = Math.min(st.geometry.clusterSize, st.geometry.virtualSize - clusterStart);
    await st.dataFile.punchHole(clusterStart, n, 'data');
  }
  const next: NewL2Entry = full
    ? st.geometry.extendedL2
      ? { kind: 'subclusters', hostOffset: 0, copied: false, alloc: 0, zero: 0 }
      : { kind: 'unallocated' }
    : st.geometry.extendedL2
    ? { kind: 'subclusters', hostOffset: 0, copied: false, alloc: 0, zero: ALL }
    : st.header.version >= 3
      ? { kind: 'zero', hostOffset: 0, copied: false }
      : { kind: 'unallocated' };
  if (sameEntry(mapping, next)) return;
  const l2 = await writableL2(st, clusterStart);
  await st.store.setL2Entry(l2, l2IndexOf(st, clusterStart), next);
  if (allocated) await releaseMapping(st, mapping);
}

function sameEntry(m: Mapping, next: NewL2Entry): boolean {
  if (m.kind !== next.kind) return false;
  if (m.kind === 'zero' && next.kind === 'zero') return m.hostOffset === next.hostOffset && m.copied === next.copied;
  if (m.kind === 'subclusters' && next.kind === 'subclusters') {
    return m.hostOffset === next.hostOffset && m.alloc === next.alloc && m.zero === next.zero && m.copied === next.copied;
  }
  return m.kind === 'unallocated';
}

/**
 * Makes the image read entirely from its backing file (or as zeros without one): every cluster of
 * the active disk is discarded fully (QEMU's qcow2_make_empty, which `qemu-img commit` runs on the
 * committed image). Snapshots keep their clusters; L2 tables stay allocated.
 */
export async function makeEmpty(st: Qcow2State): Promise<void> {
  await discard(st, 0, st.geometry.virtualSize, true);
}
