/**
 * Internal snapshots (spec: "Snapshots"). Creating one copies the active L1 table and raises the
 * refcount of everything it reaches; applying one swaps L1 contents and moves the refcounts; deleting
 * one drops them. COPIED flags of the active tables are recomputed after each.
 */
import { unsupported, usage } from '../errors.js';
import { encodeSnapshotExtra, encodeSnapshotTable, type SnapshotEntry } from '../format/snapshot.js';
import { joinU64, parseSnapshotTable } from '../spec/kaitai.js';
import type { SnapshotInfo } from '../engine/types.js';
import { maxRefcount } from '../format/refcount.js';
import { adjustRange, allocateClusters, getRefcount } from './refcounts.js';
import { hasHostCluster } from './release.js';
import { growL1, setVirtualSize } from './resize.js';
import { type RefState, writeHeader } from './state.js';
import { adjustTree, readL1Table, readL2Table, recomputeCopied } from './walk.js';

export async function readSnapshots(st: RefState): Promise<SnapshotEntry[]> {
  if (st.header.nbSnapshots === 0) return [];
  // The padding after the last entry may lie past the end of the file (QEMU does not write it).
  const bytes = new Uint8Array(st.snapshotTableBytes);
  bytes.set(await st.file.read(Number(st.header.snapshotsOffset), st.snapshotTableBytes));
  return parseSnapshotTable(bytes, st.header.nbSnapshots).entries.map((e) => {
    const x = e.extraData;
    const extra = {
      ...(x.vmStateSizeLargeHi !== undefined ? { vmStateSizeLarge: joinU64(x.vmStateSizeLargeHi, x.vmStateSizeLargeLo ?? 0) } : {}),
      ...(x.diskSizeHi !== undefined ? { diskSize: joinU64(x.diskSizeHi, x.diskSizeLo ?? 0) } : {}),
      ...(x.icountHi !== undefined ? { icount: BigInt.asIntN(64, joinU64(x.icountHi, x.icountLo ?? 0)) } : {}),
    };
    return {
      l1TableOffset: joinU64(e.l1TableOffsetHi, e.l1TableOffsetLo),
      l1Size: e.l1Size,
      id: e.idStr,
      name: e.name,
      dateSec: e.dateSec,
      dateNsec: e.dateNsec,
      vmClockNsec: joinU64(e.vmClockNsecHi, e.vmClockNsecLo),
      vmStateSize: e.vmStateSize,
      extraData: encodeSnapshotExtra(extra, x.unknownExtraData),
      extra,
    };
  });
}

export function snapshotInfo(e: SnapshotEntry, virtualSize: number): SnapshotInfo {
  return {
    id: e.id,
    name: e.name,
    vmStateSize: Number(e.extra.vmStateSizeLarge ?? BigInt(e.vmStateSize)),
    dateSec: e.dateSec,
    dateNsec: e.dateNsec,
    vmClockNsec: e.vmClockNsec,
    icount: e.extra.icount ?? -1n,
    diskSize: Number(e.extra.diskSize ?? BigInt(virtualSize)),
  };
}

/** Writes the table to new clusters, points the header at it, then frees the old one. */
async function writeSnapshotTable(st: RefState, entries: SnapshotEntry[]): Promise<void> {
  const C = st.geometry.clusterSize;
  const bytes = encodeSnapshotTable(entries);
  const oldOffset = Number(st.header.snapshotsOffset);
  const oldBytes = st.header.nbSnapshots > 0 ? st.snapshotTableBytes : 0;
  let offset = 0;
  if (bytes.byteLength > 0) {
    offset = await allocateClusters(st, Math.ceil(bytes.byteLength / C));
    await st.file.write(offset, bytes, 'snapshot-table');
    await st.file.flush();
  }
  st.header.snapshotsOffset = BigInt(offset);
  st.header.nbSnapshots = entries.length;
  st.snapshotTableBytes = bytes.byteLength;
  await writeHeader(st);
  await st.file.flush();
  if (oldBytes > 0) await adjustRange(st, oldOffset, oldBytes, -1);
}

function find(entries: SnapshotEntry[], idOrName: string): SnapshotEntry {
  const found = entries.find((e) => e.id === idOrName) ?? entries.find((e) => e.name === idOrName);
  if (!found) throw usage(`snapshot '${idOrName}' does not exist`);
  return found;
}

export async function createSnapshot(st: RefState, name: string): Promise<SnapshotEntry> {
  if (st.features.externalDataFile) throw unsupported('internal snapshots are not possible with an external data file');
  const C = st.geometry.clusterSize;
  const entries = await readSnapshots(st);
  const id = String(entries.reduce((max, e) => Math.max(max, Number.parseInt(e.id, 10) || 0), 0) + 1);
  const tree = await readL1Table(st, Number(st.header.l1TableOffset), st.header.l1Size);
  await checkRoomForReference(st, tree);
  const l1Bytes = st.header.l1Size * 8;
  const l1Copy = await allocateClusters(st, Math.max(1, Math.ceil(l1Bytes / C)));
  const l1 = await st.file.read(Number(st.header.l1TableOffset), l1Bytes);
  await st.file.write(l1Copy, l1, 'l1');
  await adjustTree(st, tree, +1);
  await recomputeCopied(st);
  const now = Date.now();
  const extra = { vmStateSizeLarge: 0n, diskSize: BigInt(st.geometry.virtualSize), icount: -1n };
  const entry: SnapshotEntry = {
    l1TableOffset: BigInt(l1Copy),
    l1Size: st.header.l1Size,
    id,
    name,
    dateSec: Math.floor(now / 1000),
    dateNsec: (now % 1000) * 1_000_000,
    vmClockNsec: 0n,
    vmStateSize: 0,
    extraData: encodeSnapshotExtra(extra),
    extra,
  };
  await writeSnapshotTable(st, [...entries, entry]);
  return entry;
}

/** Refuses, before changing anything, when one more reference would overflow a refcount. */
async function checkRoomForReference(st: RefState, tree: readonly number[]): Promise<void> {
  const max = maxRefcount(st.geometry.refcountOrder);
  const C = st.geometry.clusterSize;
  const full = async (cluster: number) => BigInt(await getRefcount(st, cluster)) >= max;
  for (const l2 of tree) {
    if (l2 === 0) continue;
    let overflow = await full(l2 / C);
    for (const { mapping } of overflow ? [] : await readL2Table(st, l2)) {
      if (mapping.kind === 'compressed') overflow = await full(Math.floor(mapping.hostOffset / C));
      else if (hasHostCluster(st, mapping)) overflow = await full(mapping.hostOffset / C);
      if (overflow) break;
    }
    if (overflow) {
      throw unsupported(`a snapshot needs one more reference to clusters whose ${1 << st.geometry.refcountOrder}-bit refcounts are at their maximum`);
    }
  }
}

export async function applySnapshot(st: RefState, idOrName: string): Promise<void> {
  const sn = find(await readSnapshots(st), idOrName);
  const diskSize = Number(sn.extra.diskSize ?? BigInt(st.geometry.virtualSize));
  if (diskSize !== st.geometry.virtualSize) await setVirtualSize(st, diskSize);
  if (sn.l1Size > st.header.l1Size) await growL1(st, sn.l1Size);
  const activeOffset = Number(st.header.l1TableOffset);
  const oldTree = await readL1Table(st, activeOffset, st.header.l1Size);
  const snOffset = Number(sn.l1TableOffset);
  await adjustTree(st, await readL1Table(st, snOffset, sn.l1Size), +1);
  const active = new Uint8Array(st.header.l1Size * 8);
  active.set(await st.file.read(snOffset, sn.l1Size * 8));
  await st.file.write(activeOffset, active, 'l1');
  await st.file.flush();
  await adjustTree(st, oldTree, -1);
  await recomputeCopied(st);
}

export async function deleteSnapshot(st: RefState, idOrName: string): Promise<void> {
  const entries = await readSnapshots(st);
  const sn = find(entries, idOrName);
  await writeSnapshotTable(st, entries.filter((e) => e !== sn));
  const snOffset = Number(sn.l1TableOffset);
  await adjustTree(st, await readL1Table(st, snOffset, sn.l1Size), -1);
  await adjustRange(st, snOffset, Math.max(1, sn.l1Size * 8), -1);
  await recomputeCopied(st);
}
