/**
 * Write-zeroes and discard with QEMU's semantics, as the reference engine (zero_in_l2_slice and
 * discard_in_l2_slice): whole (sub)clusters change their L2 entries; partial pieces of a zero
 * write become explicit zeros; partial pieces of a discard are ignored. Runs under the metadata
 * mutex (and the caller's range lock).
 */
import type { WriteZeroesOptions } from '../engine/types.js';
import { hasHostCluster, type Mapping, type NewL2Entry } from './entries.js';
import { l2IndexOf, mappingOf, setEntry, writableL2 } from './l2.js';
import { readGuest } from './read.js';
import { releaseMapping } from './release.js';
import type { OptState } from './state.js';
import { writeGuest, writeHostRuns } from './write.js';

const ALL = 0xffff_ffff;

export async function writeZeroes(st: OptState, offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
  if (st.header.version < 3 || st.features.dataFileRaw) return writeExplicitZeros(st, offset, length);
  const unit = st.geometry.subclusterSize;
  const end = offset + length;
  const alignedStart = Math.ceil(offset / unit) * unit;
  let alignedEnd = Math.floor(end / unit) * unit;
  if (end === st.geometry.virtualSize && end > alignedEnd) alignedEnd = end;
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

async function zeroPartial(st: OptState, offset: number, length: number, opts: WriteZeroesOptions): Promise<void> {
  const unit = st.geometry.subclusterSize;
  const unitStart = offset - (offset % unit);
  const unitEnd = Math.min(unitStart + unit, st.geometry.virtualSize);
  if (offset + length > unitEnd) return writeExplicitZeros(st, offset, length);
  const C = st.geometry.clusterSize;
  const clusterStart = unitStart - (unitStart % C);
  const { mapping } = await mappingOf(st, clusterStart);
  const sc = (unitStart - clusterStart) / unit;
  const holdsData =
    mapping.kind === 'normal' || mapping.kind === 'compressed' || (mapping.kind === 'subclusters' && ((mapping.alloc >>> sc) & 1) === 1);
  const readsZero = async (from: number, to: number) => from >= to || (await readGuest(st, from, to - from)).every((b) => b === 0);
  if (!holdsData && (await readsZero(unitStart, offset)) && (await readsZero(offset + length, unitEnd))) {
    await zeroInCluster(st, clusterStart, unitStart - clusterStart, unitEnd - clusterStart, opts.unmap === true);
    return;
  }
  await writeExplicitZeros(st, offset, length);
}

async function writeExplicitZeros(st: OptState, offset: number, length: number): Promise<void> {
  const chunk = Math.min(length, 1 << 20);
  for (let pos = offset; pos < offset + length; pos += chunk) {
    await writeGuest(st, pos, new Uint8Array(Math.min(chunk, offset + length - pos)), true);
  }
}

async function zeroInCluster(st: OptState, clusterStart: number, from: number, to: number, unmap: boolean): Promise<void> {
  const C = st.geometry.clusterSize;
  const { mapping } = await mappingOf(st, clusterStart);
  const l2 = await writableL2(st, clusterStart);
  const index = l2IndexOf(st, clusterStart);
  const whole = from === 0 && (to === C || clusterStart + to === st.geometry.virtualSize);
  if (st.geometry.extendedL2 && !whole) {
    if (mapping.kind !== 'subclusters') return writeExplicitZeros(st, clusterStart + from, to - from);
    const mask = rangeMask(st, from, to);
    await setEntry(st, l2, index, { ...mapping, alloc: (mapping.alloc & ~mask) >>> 0, zero: (mapping.zero | mask) >>> 0 });
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
  await setEntry(st, l2, index, next);
  if (drop) await releaseMapping(st, mapping);
}

function rangeMask(st: OptState, from: number, to: number): number {
  const S = st.geometry.subclusterSize;
  let mask = 0;
  for (let sc = from / S; sc < to / S; sc++) mask = (mask | (1 << sc)) >>> 0;
  return mask;
}

function isAllocated(st: OptState, m: Mapping): boolean {
  return m.kind === 'compressed' || hasHostCluster(st, m);
}

export async function discard(st: OptState, offset: number, length: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const end = offset + length;
  const start = Math.ceil(offset / C) * C;
  let stop = Math.floor(end / C) * C;
  if (end === st.geometry.virtualSize && end > stop && offset <= stop) stop = end;
  for (let clusterStart = start; clusterStart < stop; clusterStart += C) await discardCluster(st, clusterStart);
}

async function discardCluster(st: OptState, clusterStart: number): Promise<void> {
  const { mapping } = await mappingOf(st, clusterStart);
  const allocated = isAllocated(st, mapping);
  if (!st.backing && !allocated) return;
  if (st.features.dataFileRaw) {
    const n = Math.min(st.geometry.clusterSize, st.geometry.virtualSize - clusterStart);
    await writeHostRuns(st, [{ host: clusterStart, bytes: new Uint8Array(n) }]);
  }
  const next: NewL2Entry = st.geometry.extendedL2
    ? { kind: 'subclusters', hostOffset: 0, copied: false, alloc: 0, zero: ALL }
    : st.header.version >= 3
      ? { kind: 'zero', hostOffset: 0, copied: false }
      : { kind: 'unallocated' };
  if (sameEntry(mapping, next)) return;
  const l2 = await writableL2(st, clusterStart);
  await setEntry(st, l2, l2IndexOf(st, clusterStart), next);
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
