/** Growing the virtual disk, and the active L1 table with it; shrinking it. */
import type { ResizeOptions } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { l1EntriesFor } from '../format/geometry.js';
import { MAX_L1_BYTES } from '../limits.js';
import { storedBytes } from './crypt-data.js';
import { writeHeader } from './header.js';
import type { NewL2Entry } from './mapping.js';
import { adjustRange, adjustRefcount, allocateClusters, releaseMapping } from './refcounts.js';
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
export async function setVirtualSize(st: Qcow2State, newSize: number): Promise<void> {
  const needed = l1EntriesFor(newSize, st.geometry);
  if (needed > st.header.l1Size) await growL1(st, needed);
  st.header.size = BigInt(newSize);
  st.geometry = { ...st.geometry, virtualSize: newSize };
  await writeHeader(st);
  if (st.dataFile && (await st.dataFile.size()) < newSize) await st.dataFile.truncate(newSize);
}

export async function resize(st: Qcow2State, newSize: number, opts: ResizeOptions = {}): Promise<void> {
  if (!Number.isSafeInteger(newSize) || newSize < 0 || newSize % 512 !== 0) {
    throw usage(`new size ${newSize} is not a multiple of 512 bytes`);
  }
  const prealloc = opts.preallocation ?? 'off';
  const oldSize = st.geometry.virtualSize;
  if (newSize < oldSize) {
    if (prealloc !== 'off') throw usage("Preallocation can't be used for shrinking an image");
    return shrink(st, newSize);
  }
  if (prealloc === 'metadata' && (st.backing || st.dataFile || st.geometry.extendedL2)) {
    throw unsupported('preallocation=metadata is implemented only for images without a backing file, an external data file or extended L2 entries');
  }
  await setVirtualSize(st, newSize);
  // The new area reads as zeros, never as the backing file's data there. As QEMU: when the backing
  // file is longer than the old size (bdrv_co_truncate's BDRV_REQ_ZERO_WRITE), the whole new area,
  // to the new end, is zeroed (qcow2_subcluster_zeroize), not only the part the backing file covers.
  if ((st.backing?.virtualSize ?? 0) > oldSize && newSize > oldSize) await writeZeroes(st, oldSize, newSize - oldSize);
  if (prealloc === 'metadata' && newSize > oldSize) await preallocateMetadata(st, oldSize, newSize);
}

/**
 * preallocate_co with PREALLOC_MODE_METADATA over [from, to): every cluster there that holds no data
 * gets a host cluster, mapped with COPIED set. As qcow2_alloc_host_offset does, the L2 table comes
 * first (where there is none), then one contiguous run of host clusters for the clusters of that
 * table that need one (so a lone free cluster, such as the old L1 table's, is not taken for data).
 * Data is written only where a cluster reaches outside [from, to): the guest's bytes before `from`
 * (copy on write), zeros after `to`. Then the file is extended to the end of the last allocation.
 */
async function preallocateMetadata(st: Qcow2State, from: number, to: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const span = l1Span(st);
  let end = 0;
  for (let clusterStart = Math.floor(from / C) * C; clusterStart < to; ) {
    const first = (await mappingOf(st, clusterStart)).mapping;
    if (first.kind === 'normal' && first.copied) {
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
    const host = await allocateClusters(st, mappings.length);
    // On an encrypted image both are stored encrypted, as QEMU's copy on write stores them (sizes
    // are whole sectors); the clusters between are left as the file holds them, as QEMU leaves them.
    if (head) await st.file.write(host, storedBytes(st.crypto, host, head), 'data');
    const last = clusterStart + (mappings.length - 1) * C;
    const tail = host + (to - clusterStart);
    if (last + C > to) await st.file.write(tail, storedBytes(st.crypto, tail, new Uint8Array(last + C - to)), 'data');
    for (const [i, mapping] of mappings.entries()) {
      const guest = clusterStart + i * C;
      await st.store.setL2Entry(l2, l2IndexOf(st, guest), { kind: 'normal', hostOffset: host + i * C, copied: true });
      if (mapping.kind !== 'unallocated') await releaseMapping(st, mapping);
    }
    end = Math.max(end, host + mappings.length * C);
    clusterStart += mappings.length * C;
  }
  if (end > (await st.file.size())) await st.file.truncate(end);
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
