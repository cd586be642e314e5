/**
 * Internal snapshots (spec: "Snapshots"). Creating one copies the active L1 table and raises the
 * refcount of everything it reaches; applying one swaps L1 contents and moves the refcounts;
 * deleting one drops them. COPIED flags of the active tables are recomputed after each. The
 * engines run these under the dirty bit (header.ts: underDirtyBit), since refcounts and COPIED
 * flags cannot change together atomically.
 */
import type { SnapshotInfo, SnapshotRef } from '../engine/types.js';
import { corrupt, isQcow2Error, Qcow2Error, unsupported, usage } from '../errors.js';
import { hostRangeFits, hostRangeProblem } from '../format/host-offset.js';
import { maxRefcount } from '../format/refcount.js';
import { encodeSnapshotExtra, encodeSnapshotTable, type SnapshotEntry, snapshotEntrySize } from '../format/snapshot.js';
import { validateHeader } from '../format/validate.js';
import type { ImageMetadata } from '../image/metadata.js';
import { MAX_HOST_OFFSET, MAX_L1_BYTES } from '../limits.js';
import { writeHeader } from './header.js';
import { hasHostCluster } from './mapping.js';
import { adjustRange, allocateClusters } from './refcounts.js';
import { growL1, setVirtualSize } from './resize.js';
import type { Qcow2State } from './state.js';
import { applyDeltas, countTree, recomputeCopied, refuseOverflow } from './tree.js';

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

export async function listSnapshots(st: Qcow2State): Promise<SnapshotInfo[]> {
  return (await st.store.readSnapshots()).map((e) => snapshotInfo(e, st.geometry.virtualSize));
}

/** Writes the table to new clusters, points the header at it, then frees the old one. */
export async function writeSnapshotTable(st: Qcow2State, entries: SnapshotEntry[]): Promise<void> {
  const C = st.geometry.clusterSize;
  const bytes = encodeSnapshotTable(entries);
  const oldOffset = Number(st.header.snapshotsOffset);
  const oldBytes = st.header.nbSnapshots > 0 ? st.snapshotTableBytes : 0;
  let offset = 0;
  if (bytes.byteLength > 0) {
    offset = await allocateClusters(st, Math.ceil(bytes.byteLength / C));
    await st.store.writeThrough(offset, bytes, 'snapshot-table');
  }
  st.header.snapshotsOffset = BigInt(offset);
  st.header.nbSnapshots = entries.length;
  st.snapshotTableBytes = bytes.byteLength;
  await writeHeader(st);
  if (oldBytes > 0) await adjustRange(st, oldOffset, oldBytes, -1);
}

/**
 * The image as it was when snapshot `idOrName` was taken, for a read-only open (qemu-nbd's `-l`,
 * qemu-img convert's `-l`): the metadata with the snapshot's L1 table in place of the active one.
 * The swapped header goes through the same validation as the real one, at the snapshot's own disk
 * size, so a snapshot whose table lies outside the file or is too small for its disk is refused
 * the same way. The device keeps the active virtual size, as QEMU's temporary snapshot load does
 * (past the snapshot's table, reads go to the backing file or read zeros).
 */
export function snapshotView(meta: ImageMetadata, ref: SnapshotRef): ImageMetadata {
  const { sn } = findChecked(meta.snapshots, ref, meta.layout.geometry.clusterSize, meta.layout.snapshotsOffset);
  const header = { ...meta.header, l1Size: sn.l1Size, l1TableOffset: sn.l1TableOffset, size: sn.extra.diskSize ?? meta.header.size };
  let layout;
  try {
    layout = validateHeader(header, meta.fileSize, meta.featureTable);
  } catch (err) {
    if (!(err instanceof Qcow2Error)) throw err;
    throw new Qcow2Error(err.code, `snapshot '${sn.name}' (id ${sn.id}): ${err.message}`, { field: `snapshot ${sn.id}` });
  }
  const active = meta.layout.geometry.virtualSize;
  return {
    ...meta,
    header: { ...header, size: meta.header.size },
    layout: { ...layout, geometry: { ...layout.geometry, virtualSize: active } },
  };
}

/**
 * A snapshot's L1 table as QEMU checks it before loading, applying or deleting the snapshot
 * (qcow2_validate_table(), "Snapshot L1 table"): at most MAX_L1_BYTES, addressable, and cluster
 * aligned. A table past the end of the file is not refused here (QEMU reads it as zeros).
 * `entryAt`: the file offset of the snapshot's entry in the table.
 */
export function checkSnapshotL1(sn: SnapshotEntry, clusterSize: number, entryAt: number): number {
  const where = { field: `snapshot ${sn.id} l1_table_offset`, offset: entryAt };
  const bytes = sn.l1Size * 8;
  if (bytes > MAX_L1_BYTES) {
    throw unsupported(`snapshot '${sn.name}' (id ${sn.id}): L1 table of ${sn.l1Size} entries exceeds the ${MAX_L1_BYTES / 2 ** 20} MiB limit`, where);
  }
  const offset = sn.l1TableOffset;
  if (offset % BigInt(clusterSize) !== 0n) {
    throw corrupt(`snapshot '${sn.name}' (id ${sn.id}): L1 table offset 0x${offset.toString(16)} is not cluster aligned`, where);
  }
  if (offset > BigInt(MAX_HOST_OFFSET) || !hostRangeFits(Number(offset), bytes)) {
    throw corrupt(`snapshot '${sn.name}' (id ${sn.id}): ${hostRangeProblem(Number(offset), bytes)}`, where);
  }
  return Number(offset);
}

/** The file offset of each snapshot's entry in the table at `tableOffset`. */
function entryOffsets(entries: readonly SnapshotEntry[], tableOffset: number): Map<SnapshotEntry, number> {
  const out = new Map<SnapshotEntry, number>();
  let at = tableOffset;
  for (const e of entries) {
    out.set(e, at);
    at += snapshotEntrySize(e);
  }
  return out;
}

/** The snapshot `ref` of `entries` (the table at `tableOffset`), with its L1 table checked. */
function findChecked(entries: readonly SnapshotEntry[], ref: SnapshotRef, clusterSize: number, tableOffset: number): { sn: SnapshotEntry; l1Offset: number } {
  const sn = find(entries, ref);
  return { sn, l1Offset: checkSnapshotL1(sn, clusterSize, entryOffsets(entries, tableOffset).get(sn) ?? tableOffset) };
}

/** Every snapshot of the image with its L1 table's offset, each refused as checkSnapshotL1() says. */
export async function checkedSnapshotTables(st: Qcow2State): Promise<Array<{ sn: SnapshotEntry; l1Offset: number }>> {
  const entries = await st.store.readSnapshots();
  const tableOffset = Number(st.header.snapshotsOffset);
  const at = entryOffsets(entries, tableOffset);
  return entries.map((sn) => ({ sn, l1Offset: checkSnapshotL1(sn, st.geometry.clusterSize, at.get(sn) ?? tableOffset) }));
}

/** The snapshot `idOrName` of the image, refused as checkSnapshotL1() says. */
export async function checkedSnapshot(st: Qcow2State, idOrName: string): Promise<SnapshotEntry> {
  return findChecked(await st.store.readSnapshots(), idOrName, st.geometry.clusterSize, Number(st.header.snapshotsOffset)).sn;
}

/**
 * The snapshot `ref` names: an ID, else a name; or the one with the ID and name given (QEMU's
 * find_snapshot_by_id_and_name). Not found: a usage error with errno ENOENT (isMissingSnapshot).
 */
function find(entries: readonly SnapshotEntry[], ref: SnapshotRef): SnapshotEntry {
  const found =
    typeof ref === 'string'
      ? (entries.find((e) => e.id === ref) ?? entries.find((e) => e.name === ref))
      : entries.find((e) => (ref.id === undefined || e.id === ref.id) && (ref.name === undefined || e.name === ref.name));
  if (found) return found;
  const what = typeof ref === 'string' ? `'${ref}'` : [ref.id === undefined ? '' : `with ID '${ref.id}'`, ref.name === undefined ? '' : `named '${ref.name}'`].filter((x) => x).join(' ');
  throw usage(`snapshot ${what} does not exist`, { errno: 'ENOENT' });
}

/** Whether `err` says that the snapshot asked for is not in the image (QEMU: ENOENT, "Can't find snapshot"). */
export function isMissingSnapshot(err: unknown): boolean {
  return isQcow2Error(err) && err.code === 'usage' && err.errno === 'ENOENT';
}

/** The active L1 table's L2 offsets. */
async function activeTree(st: Qcow2State): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < st.header.l1Size; i++) out.push((await st.store.l1Entry(i)).l2Offset);
  return out;
}

export async function createSnapshot(st: Qcow2State, name: string): Promise<SnapshotInfo> {
  if (st.features.externalDataFile) throw unsupported('internal snapshots are not possible with an external data file');
  const C = st.geometry.clusterSize;
  const entries = await st.store.readSnapshots();
  const id = String(entries.reduce((max, e) => Math.max(max, Number.parseInt(e.id, 10) || 0), 0) + 1);
  const deltas = await countTree(st, await activeTree(st), +1);
  await refuseOverflow(st, deltas, 'a snapshot');
  const l1Bytes = st.header.l1Size * 8;
  const l1Copy = await allocateClusters(st, Math.max(1, Math.ceil(l1Bytes / C)));
  await st.store.writeThrough(l1Copy, await st.store.activeL1Bytes(l1Bytes), 'l1');
  await applyDeltas(st, deltas, +1);
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
  return snapshotInfo(entry, st.geometry.virtualSize);
}

export async function applySnapshot(st: Qcow2State, idOrName: string): Promise<void> {
  const sn = await checkedSnapshot(st, idOrName);
  const snOffset = Number(sn.l1TableOffset);
  // Net changes, so a cluster both trees share is not counted up and down (a narrow refcount at its
  // maximum would overflow in between). Increases before the switch, decreases after: a crash leaks.
  const deltas = await countTree(st, await st.store.readL1Table(snOffset, sn.l1Size), +1);
  await countTree(st, await activeTree(st), -1, deltas);
  await refuseOverflow(st, deltas, 'applying this snapshot');
  const diskSize = Number(sn.extra.diskSize ?? BigInt(st.geometry.virtualSize));
  if (diskSize !== st.geometry.virtualSize) await setVirtualSize(st, diskSize);
  if (sn.l1Size > st.header.l1Size) await growL1(st, sn.l1Size);
  const active = new Uint8Array(st.header.l1Size * 8);
  active.set(await st.file.read(snOffset, sn.l1Size * 8));
  await applyDeltas(st, deltas, +1);
  await st.store.replaceActiveL1(active);
  await applyDeltas(st, deltas, -1);
  await recomputeCopied(st);
}

export async function deleteSnapshot(st: Qcow2State, idOrName: string): Promise<void> {
  const entries = await st.store.readSnapshots();
  const { sn } = findChecked(entries, idOrName, st.geometry.clusterSize, Number(st.header.snapshotsOffset));
  await writeSnapshotTable(st, entries.filter((e) => e !== sn));
  const snOffset = Number(sn.l1TableOffset);
  await applyDeltas(st, await countTree(st, await st.store.readL1Table(snOffset, sn.l1Size), -1), -1);
  await adjustRange(st, snOffset, Math.max(1, sn.l1Size * 8), -1);
  await recomputeCopied(st);
}
