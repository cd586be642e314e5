/** Growing the virtual disk, and the active L1 table with it; shrinking it. */
import type { ResizeOptions } from '../engine/types.js';
import { usage } from '../errors.js';
import { l1EntriesFor } from '../format/geometry.js';
import { MAX_L1_BYTES } from '../limits.js';
import { storedBytes } from './crypt-data.js';
import { writeHeader } from './header.js';
import { writeZeros } from '../io/block-file.js';
import type { Mapping, NewL2Entry } from './mapping.js';
import { adjustRange, adjustRefcount, allocateClusters, lastReferencedCluster, refcountArea, releaseMapping } from './refcounts.js';
import type { Qcow2State } from './state.js';
import { l1Span, l2IndexOf, l2TableFor, mappingOf, validMapping, writableL2 } from './tables.js';
import { writeZeroes } from './zero-discard.js';

/** What checkNewSize needs to know of an image. */
export interface TruncatedImage {
  version: number;
  snapshots: number;
  clusterSize: number;
  extendedL2: boolean;
}

/**
 * The refusals of a new virtual size that `qemu-img resize` and `qemu-img amend -o size=` share
 * (bdrv_co_truncate, then qcow2_co_truncate), in QEMU's order, with its messages. `total` is the
 * size as QEMU's signed 64-bit offset reads it.
 */
export function checkNewSize(image: TruncatedImage, total: bigint): void {
  if (total < 0n) throw usage('Image size cannot be negative');
  if (total % 512n !== 0n) throw usage('The new size must be a multiple of 512');
  if (image.snapshots > 0 && image.version < 3) throw usage("Can't resize a v2 image which has snapshots");
  const l2Entries = BigInt(image.clusterSize / (image.extendedL2 ? 16 : 8));
  const span = BigInt(image.clusterSize) * l2Entries;
  if (((total + span - 1n) / span) * 8n > BigInt(MAX_L1_BYTES)) throw usage('Failed to grow the L1 table: File too large');
}

/** Sets the virtual size (growing the L1 table when it needs more entries) and writes the header. */
export async function setVirtualSize(st: Qcow2State, newSize: number, growDataFile = true): Promise<void> {
  const needed = l1EntriesFor(newSize, st.geometry);
  if (needed > st.header.l1Size) await growL1(st, needed);
  st.header.size = BigInt(newSize);
  st.geometry = { ...st.geometry, virtualSize: newSize };
  await writeHeader(st);
  if (growDataFile && st.dataFile && (await st.dataFile.size()) < newSize) await st.dataFile.truncate(newSize);
}

export async function resize(st: Qcow2State, newSize: number, opts: ResizeOptions = {}): Promise<void> {
  if (!Number.isSafeInteger(newSize) || newSize < 0 || newSize % 512 !== 0) {
    throw usage(`new size ${newSize} is not a multiple of 512 bytes`);
  }
  let prealloc = opts.preallocation ?? 'off';
  const oldSize = st.geometry.virtualSize;
  if (newSize < oldSize) {
    if (prealloc !== 'off') throw usage("Preallocation can't be used for shrinking an image");
    return shrink(st, newSize);
  }
  // data_file_raw: the data file alone is the disk, so QEMU maps every new cluster 1:1 at once.
  if (prealloc === 'off' && st.features.dataFileRaw) prealloc = 'metadata';
  // On an encrypted image, as in QEMU, the copy on write of the preallocated clusters is stored
  // encrypted and the rest keeps what the file holds there (zeros for falloc and full), which reads
  // as the decryption of those bytes, not as zeros.
  // With preallocation the data file grows with the preallocated area (preallocate's end).
  await setVirtualSize(st, newSize, prealloc === 'off');
  if (newSize <= oldSize) return;
  // The new area reads as zeros, never as the backing file's data there. As QEMU: when the backing
  // file is longer than the old size (bdrv_co_truncate's BDRV_REQ_ZERO_WRITE), the whole new area,
  // to the new end, is zeroed (qcow2_subcluster_zeroize), not only the part the backing file covers.
  const overBacking = (st.backing?.virtualSize ?? 0) > oldSize;
  if (prealloc === 'off') {
    if (overBacking) await writeZeroes(st, oldSize, newSize - oldSize);
    return;
  }
  await preallocate(st, oldSize, newSize, prealloc, overBacking);
  // As qcow2_co_truncate: the (sub)cluster-aligned part is zero clusters (preallocate), the part of
  // the (sub)cluster at the old end is a plain write of zeros.
  // falloc and full in the image file leave real zeros, mapped as data: nothing to zero (QEMU's
  // truncate of the file took BDRV_REQ_ZERO_WRITE).
  if (!overBacking || ((prealloc === 'falloc' || prealloc === 'full') && !st.features.externalDataFile)) return;
  const unit = st.geometry.subclusterSize;
  const C = st.geometry.clusterSize;
  const zeroStart = Math.min(newSize, Math.ceil(oldSize / unit) * unit);
  // A cluster at the old end that kept its host cluster (extended L2): its subclusters past the old end.
  const firstEnd = Math.min(newSize, Math.ceil(oldSize / C) * C);
  if (firstEnd > zeroStart) await writeZeroes(st, zeroStart, firstEnd - zeroStart);
  if (zeroStart > oldSize) await st.store.writeGuest(oldSize, new Uint8Array(zeroStart - oldSize));
}

const ALL_SUBCLUSTERS = 0xffffffff;

/**
 * qcow2_co_truncate's falloc and full in the image file, before any L2 entry changes: past the last
 * cluster in use, a refcount area that covers every new data cluster and the L2 tables they may
 * need (qcow2_refcount_area, exact), then the run of data clusters after it, counted and its
 * storage allocated (falloc) or written with zeros (full) by the file's growth. Returns the run's
 * host offset: the data of guest clusters from the one holding `from` to the one holding `to - 1`.
 */
async function reserveDataRun(st: Qcow2State, from: number, to: number, mode: 'falloc' | 'full'): Promise<number> {
  const C = st.geometry.clusterSize;
  const dataClusters = Math.ceil(to / C) - Math.floor(from / C);
  const l2Tables = Math.ceil(dataClusters / (C / st.geometry.l2EntryBytes)) + 1;
  // qcow2_get_last_cluster: the area starts after the last cluster with a reference.
  const start = await refcountArea(st, (await lastReferencedCluster(st)) + 1, dataClusters + l2Tables);
  const end = (start + dataClusters) * C;
  await adjustRange(st, start * C, end - start * C, 1);
  const eof = await st.file.size();
  if (end > eof) {
    if (mode === 'falloc') await st.file.zeroRange(eof, end - eof, 'data');
    else await writeZeros(st.file, 'zeroRange', eof, end - eof, 'data');
    if ((await st.file.size()) < end) await st.file.truncate(end);
  }
  return start * C;
}

/**
 * Preallocation of [from, to) after a resize, as qcow2_co_truncate does it (the result, not QEMU's
 * host placement): every cluster there that holds no data gets a host cluster, mapped with COPIED
 * set. As qcow2_alloc_host_offset does, the L2 table comes first (where there is none), then one
 * contiguous run of host clusters for the clusters of that table that need one (so a lone free
 * cluster, such as the old L1 table's, is not taken for data); with an external data file the host
 * offset is the guest offset.
 *
 * metadata (preallocate_co): data is written only where a cluster reaches outside [from, to): the
 * guest's bytes before `from` (copy on write), zeros after `to` up to the (sub)cluster end; then
 * the file covers every allocation (see below). falloc and full also allocate the
 * clusters' storage, before their entries point at it: fallocate (BlockFile.zeroRange) or zeros
 * written. In the image file such clusters hold zeros for real, so even over a longer backing file
 * they are plain data (extended L2: every subcluster allocated, QEMU's subclusters_need_allocation).
 * Otherwise, over a backing file longer than the old size (`overBacking`), the new clusters are
 * zero clusters that keep their host cluster (qcow2_subcluster_zeroize without MAY_UNMAP), from the
 * first (sub)cluster boundary at or past `from` (the caller writes zeros before it).
 * With extended L2 and none of that, the bitmap stays as it was (0): allocated cluster,
 * subclusters unallocated, as QEMU leaves it.
 */
async function preallocate(st: Qcow2State, from: number, to: number, mode: 'metadata' | 'falloc' | 'full', overBacking: boolean): Promise<void> {
  const C = st.geometry.clusterSize;
  const unit = st.geometry.subclusterSize;
  const extended = st.geometry.extendedL2;
  const external = st.features.externalDataFile;
  const target = st.dataFile ?? st.file;
  const realZeros = mode !== 'metadata' && !external;
  const zeroFrom = overBacking && !realZeros ? Math.ceil(from / unit) * unit : Infinity;
  const span = l1Span(st);
  // falloc and full in the image file take one run of data clusters, reserved up front.
  let reserved = realZeros ? await reserveDataRun(st, from, to, mode) : 0;
  for (let clusterStart = Math.floor(from / C) * C; clusterStart < to; ) {
    const first = (await mappingOf(st, clusterStart)).mapping;
    // A cluster at the old end that holds data is kept, except by falloc and full in the image
    // file, which (qcow2_co_truncate) allocate from the start of that cluster, its data copied.
    if (!realZeros && (first.kind === 'normal' || (first.kind === 'subclusters' && first.hostOffset !== 0)) && first.copied) {
      clusterStart += C;
      continue;
    }
    const head = from > clusterStart ? await st.store.readGuest(clusterStart, from - clusterStart) : undefined;
    const l2 = await writableL2(st, clusterStart);
    const runEnd = Math.min(to, (Math.floor(clusterStart / span) + 1) * span);
    const mappings = [first];
    for (let c = clusterStart + C; c < runEnd; c += C) {
      const { mapping } = await mappingOf(st, c);
      if (mapping.kind !== 'unallocated') break;
      mappings.push(mapping);
    }
    const runBytes = mappings.length * C;
    let host: number;
    if (external) host = clusterStart;
    else if (realZeros) {
      host = reserved;
      reserved += runBytes;
    } else host = await allocateClusters(st, mappings.length);
    // In the image file, falloc and full have no copy on write after `to`; otherwise
    // (preallocate_co) the copy on write goes to the (sub)cluster end.
    const last = clusterStart + runBytes - C;
    const tailEnd = realZeros ? to : Math.min(last + C, Math.ceil(to / unit) * unit);
    if (head) {
      // Copy on write of the guest's bytes before `from`, then zeros to the (sub)cluster boundary
      // the cluster's new data reaches, so that a reused host cluster reads as zeros.
      const bytes = new Uint8Array((realZeros ? from : Math.min(clusterStart + C, Math.max(from, tailEnd))) - clusterStart);
      bytes.set(head);
      await target.write(host, storedBytes(st.crypto, host, bytes), 'data');
    }
    if (tailEnd > to && (!head || last > clusterStart)) {
      const tail = host + (to - clusterStart);
      await target.write(tail, storedBytes(st.crypto, tail, new Uint8Array(tailEnd - to)), 'data');
    }
    // The file reaches past the clusters before any entry points at them (an entry past the end of
    // the file is corruption to qemu-img check).
    if (!external && !realZeros && host + runBytes > (await st.file.size())) await st.file.truncate(host + runBytes);
    for (const [i, mapping] of mappings.entries()) {
      const guest = clusterStart + i * C;
      await st.store.setL2Entry(l2, l2IndexOf(st, guest), newEntry(guest, host + i * C, mapping));
      if (mapping.kind !== 'unallocated') await releaseMapping(st, mapping);
    }
    clusterStart += runBytes;
  }
  if (!external) return;
  if (st.dataFile && to > (await st.dataFile.size())) {
    // preallocate_co: the data file grows to `to` only where the copy on write left it shorter,
    // with the storage allocated (falloc) or written (full) from its old end.
    const at = await st.dataFile.size();
    if (mode === 'falloc') await st.dataFile.zeroRange(at, to - at, 'data');
    else if (mode === 'full') await writeZeros(st.dataFile, 'zeroRange', at, to - at, 'data');
    else await st.dataFile.truncate(to);
  }

  function newEntry(guest: number, hostOffset: number, old: Mapping): NewL2Entry {
    if (!extended) {
      return guest >= zeroFrom ? { kind: 'zero', hostOffset, copied: true } : { kind: 'normal', hostOffset, copied: true };
    }
    let alloc = old.kind === 'subclusters' ? old.alloc : 0;
    let zero = old.kind === 'subclusters' ? old.zero : 0;
    if (realZeros && overBacking) {
      alloc = ALL_SUBCLUSTERS;
      zero = 0;
    } else if (zeroFrom !== Infinity) {
      for (let i = 0; i < C / unit; i++) {
        const sub = guest + i * unit;
        const bit = 2 ** i;
        if (sub >= zeroFrom) {
          zero |= bit;
          alloc &= ~bit;
        }
      }
    }
    return { kind: 'subclusters', hostOffset, copied: true, alloc: alloc >>> 0, zero: zero >>> 0 };
  }
}

/**
 * Shrinks the virtual disk as qcow2_co_truncate does: every cluster from the first whole cluster
 * past the new end is discarded for good (its L2 entry cleared, its storage released; a table a
 * snapshot shares is copied first), then the L1 entries past the new end are cleared on disk and
 * their L2 tables freed (the header keeps its l1_size, as QEMU's does), then the header gets the new
 * size and an external data file is cut to it. Not done (QEMU does them to save space, not for
 * correctness): freeing refcount blocks that count nothing but themselves, and cutting the image
 * file after its last used cluster.
 */
async function shrink(st: Qcow2State, newSize: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const oldSize = st.geometry.virtualSize;
  const span = l1Span(st);
  const keep = l1EntriesFor(newSize, st.geometry);
  // The clusters past the new end under the last L1 entry kept: cleared in their (own) L2 table.
  const empty: NewL2Entry = st.geometry.extendedL2 ? { kind: 'subclusters', hostOffset: 0, copied: false, alloc: 0, zero: 0 } : { kind: 'unallocated' };
  for (let clusterStart = Math.ceil(newSize / C) * C; clusterStart < Math.min(oldSize, keep * span); clusterStart += C) {
    const { l2, mapping } = await mappingOf(st, clusterStart);
    if (l2 === 0) break;
    if (isEmpty(mapping)) continue;
    const writable = await writableL2(st, clusterStart);
    await st.store.setL2Entry(writable, l2IndexOf(st, clusterStart), empty);
    await releaseMapping(st, mapping);
  }
  // The L2 tables of the L1 entries dropped: their references are released without rewriting them
  // (QEMU copies a shared table, clears it, then frees the copy: the same counts in the end).
  const dropped: number[] = [];
  for (let index = keep; index < st.header.l1Size; index++) {
    const l2 = await l2TableFor(st, index * span);
    if (l2 === 0) continue;
    const entries = await st.store.l2Table(l2);
    for (const [i, m] of entries.entries()) {
      const mapping = validMapping(m, index * span + i * C, l2 + i * st.geometry.l2EntryBytes);
      if (!isEmpty(mapping)) await releaseMapping(st, mapping);
    }
    await st.store.setL1Entry(index, 0, false);
    dropped.push(l2);
  }
  if (dropped.length > 0) await st.file.flush();
  for (const l2 of dropped.reverse()) await adjustRefcount(st, l2 / C, -1);
  st.header.size = BigInt(newSize);
  st.geometry = { ...st.geometry, virtualSize: newSize };
  await writeHeader(st);
  if (st.dataFile && (await st.dataFile.size()) > newSize) await st.dataFile.truncate(newSize);
}

function isEmpty(m: NewL2Entry): boolean {
  return m.kind === 'unallocated' || (m.kind === 'subclusters' && m.hostOffset === 0 && m.alloc === 0 && m.zero === 0);
}

/**
 * Moves the active L1 table to new clusters with `entries` entries, the old ones copied: the new
 * table, then the header, then the old table's clusters are freed.
 */
export async function growL1(st: Qcow2State, entries: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const oldOffset = Number(st.header.l1TableOffset);
  const oldBytes = st.header.l1Size * 8;
  const table = await st.store.activeL1Bytes(Math.ceil((entries * 8) / C) * C);
  const offset = await allocateClusters(st, table.byteLength / C);
  await st.store.writeThrough(offset, table, 'l1');
  await st.file.flush();
  st.header.l1TableOffset = BigInt(offset);
  st.header.l1Size = entries;
  st.store.activeL1Moved();
  await writeHeader(st);
  if (oldBytes > 0) await adjustRange(st, oldOffset, oldBytes, -1);
}
