/**
 * Internal snapshots, as the reference engine: create copies the active L1 and raises the tree's
 * refcounts; apply swaps L1 contents and moves refcounts; delete drops them; COPIED flags are
 * recomputed after each. The whole device is locked and the metadata mutex held.
 */
import { unsupported, usage } from '../errors.js';
import type { SnapshotInfo } from '../engine/types.js';
import { decodeL1Table } from '../format/l1.js';
import { maxRefcount } from '../format/refcount.js';
import { decodeSnapshotTable, encodeSnapshotExtra, encodeSnapshotTable, type SnapshotEntry } from '../format/snapshot.js';
import { hasHostCluster } from './entries.js';
import { writeHeader } from './header.js';
import { encodeActiveL1 } from './l2.js';
import { forgetMetadataMap } from './overlap.js';
import { adjustRange, allocateClusters, getRefcount } from './refcounts.js';
import { growL1, setVirtualSize } from './resize.js';
import type { OptState } from './state.js';
import { adjustTree, readL1Table, readL2Table, recomputeCopied } from './walk.js';

export async function readSnapshots(st: OptState): Promise<SnapshotEntry[]> {
  if (st.header.nbSnapshots === 0) return [];
  const bytes = new Uint8Array(st.snapshotTableBytes);
  bytes.set(await st.file.read(Number(st.header.snapshotsOffset), st.snapshotTableBytes));
  return decodeSnapshotTable(bytes, st.header.nbSnapshots, Number(st.header.snapshotsOffset)).entries;
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

async function writeSnapshotTable(st: OptState, entries: SnapshotEntry[]): Promise<void> {
  const C = st.geometry.clusterSize;
  const bytes = encodeSnapshotTable(entries);
  const oldOffset = Number(st.header.snapshotsOffset);
  const oldBytes = st.header.nbSnapshots > 0 ? st.snapshotTableBytes : 0;
  let offset = 0;
  if (bytes.byteLength > 0) {
    offset = await allocateClusters(st, Math.ceil(bytes.byteLength / C));
    await st.order.writeThrough(offset, bytes, 'snapshot-table');
  }
  st.header.snapshotsOffset = BigInt(offset);
  st.header.nbSnapshots = entries.length;
  st.snapshotTableBytes = bytes.byteLength;
  await writeHeader(st);
  if (oldBytes > 0) await adjustRange(st, oldOffset, oldBytes, -1);
}

function find(entries: SnapshotEntry[], idOrName: string): SnapshotEntry {
  const found = entries.find((e) => e.id === idOrName) ?? entries.find((e) => e.name === idOrName);
  if (!found) throw usage(`snapshot '${idOrName}' does not exist`);
  return found;
}

export async function createSnapshot(st: OptState, name: string): Promise<SnapshotEntry> {
  if (st.features.externalDataFile) throw unsupported('internal snapshots are not possible with an external data file');
  const C = st.geometry.clusterSize;
  const entries = await readSnapshots(st);
  const id = String(entries.reduce((max, e) => Math.max(max, Number.parseInt(e.id, 10) || 0), 0) + 1);
  const tree = st.l1Offsets.slice();
  await checkRoomForReference(st, tree);
  const l1Bytes = st.header.l1Size * 8;
  const l1Copy = await allocateClusters(st, Math.max(1, Math.ceil(l1Bytes / C)));
  await st.order.writeThrough(l1Copy, encodeActiveL1(st, l1Bytes), 'l1');
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

async function checkRoomForReference(st: OptState, tree: readonly number[]): Promise<void> {
  const max = maxRefcount(st.geometry.refcountOrder);
  const C = st.geometry.clusterSize;
  const full = async (cluster: number) => BigInt(await getRefcount(st, cluster)) >= max;
  for (const l2 of tree) {
    if (l2 === 0) continue;
    let overflow = await full(l2 / C);
    for (const m of overflow ? [] : await readL2Table(st, l2)) {
      if (m.kind === 'compressed') overflow = await full(Math.floor(m.hostOffset / C));
      else if (hasHostCluster(st, m)) overflow = await full(m.hostOffset / C);
      if (overflow) break;
    }
    if (overflow) {
      throw unsupported(`a snapshot needs one more reference to clusters whose ${1 << st.geometry.refcountOrder}-bit refcounts are at their maximum`);
    }
  }
}

export async function applySnapshot(st: OptState, idOrName: string): Promise<void> {
  const sn = find(await readSnapshots(st), idOrName);
  const diskSize = Number(sn.extra.diskSize ?? BigInt(st.geometry.virtualSize));
  if (diskSize !== st.geometry.virtualSize) await setVirtualSize(st, diskSize);
  if (sn.l1Size > st.header.l1Size) await growL1(st, sn.l1Size);
  const oldTree = st.l1Offsets.slice();
  const snOffset = Number(sn.l1TableOffset);
  await adjustTree(st, await readL1Table(st, snOffset, sn.l1Size), +1);
  const active = new Uint8Array(st.header.l1Size * 8);
  active.set(await st.file.read(snOffset, sn.l1Size * 8));
  await st.order.writeThrough(Number(st.header.l1TableOffset), active, 'l1');
  const decoded = decodeL1Table(active, st.header.l1Size);
  st.l1Offsets = decoded.map((e) => e.l2Offset);
  forgetMetadataMap(st);
  st.l1Copied = decoded.map((e) => e.copied);
  await adjustTree(st, oldTree, -1);
  await recomputeCopied(st);
}

export async function deleteSnapshot(st: OptState, idOrName: string): Promise<void> {
  const entries = await readSnapshots(st);
  const sn = find(entries, idOrName);
  await writeSnapshotTable(st, entries.filter((e) => e !== sn));
  const snOffset = Number(sn.l1TableOffset);
  await adjustTree(st, await readL1Table(st, snOffset, sn.l1Size), -1);
  await adjustRange(st, snOffset, Math.max(1, sn.l1Size * 8), -1);
  await recomputeCopied(st);
}
