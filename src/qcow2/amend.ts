/**
 * What `qemu-img amend` changes in an open qcow2 image (QEMU 7.2's qcow2_amend_options, with
 * qcow2_upgrade and qcow2_downgrade), one step per function, each over the shared state; the
 * caller (src/amend/amend.ts) runs them in QEMU's order. Each step ends with one header write, and
 * whatever it changes before that is flushed first (see each step).
 */
import { unsupported, usage } from '../errors.js';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_DEFLATE,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DIRTY,
} from '../format/constants.js';
import { QEMU_FEATURE_TABLE } from '../format/extensions.js';
import { encodeSnapshotExtra } from '../format/snapshot.js';
import { expandZeroClusters } from './expand-zero.js';
import { setDirtyBit, writeHeader } from './header.js';
import { writeSnapshotTable } from './snapshots.js';
import type { Qcow2State } from './state.js';

/** Header length QEMU writes for version 3 (with the compression type and its padding). */
const V3_HEADER_LENGTH = 112;

/**
 * compat=1.1 (qcow2_upgrade): snapshot entries get the extra data version 3 requires (each one's VM
 * state size and disk size) in a new snapshot table, then the header says version 3, with QEMU's
 * feature name table.
 */
export async function upgradeToV3(st: Qcow2State): Promise<void> {
  if (st.header.version >= 3) return;
  const entries = await st.store.readSnapshots();
  if (entries.some((e) => e.extraData.byteLength < 16)) {
    const updated = entries.map((e) => {
      const extra = {
        vmStateSizeLarge: e.extra.vmStateSizeLarge ?? BigInt(e.vmStateSize),
        diskSize: e.extra.diskSize ?? BigInt(st.geometry.virtualSize),
        icount: e.extra.icount ?? -1n,
      };
      return { ...e, extra, extraData: encodeSnapshotExtra(extra, e.extraData.slice(24)) };
    });
    await writeSnapshotTable(st, updated);
  }
  st.header.version = 3;
  st.header.headerLength = V3_HEADER_LENGTH;
  st.header.tail = new Uint8Array(V3_HEADER_LENGTH - 105);
  // As `qemu-img create` lays out a v3 header: the feature name table when the cluster has room.
  if (st.geometry.clusterSize > 4096 && !st.extensions.some((e) => e.kind === 'feature-table')) {
    const at = st.extensions.findIndex((e) => e.kind !== 'backing-format' && e.kind !== 'data-file' && e.kind !== 'crypto-header');
    st.extensions.splice(at < 0 ? st.extensions.length : at, 0, { kind: 'feature-table', entries: [...QEMU_FEATURE_TABLE] });
  }
  await allOnDisk(st);
  await writeHeader(st);
}

/** data_file_raw and data_file (the name of the external data file; '' removes the name), then the header. */
export async function setDataFileFields(st: Qcow2State, dataFileRaw: boolean, dataFile: string | undefined): Promise<void> {
  if (dataFileRaw) st.header.autoclearFeatures |= AUTOCLEAR_DATA_FILE_RAW;
  else st.header.autoclearFeatures &= ~AUTOCLEAR_DATA_FILE_RAW;
  st.features.dataFileRaw = dataFileRaw;
  if (dataFile !== undefined) {
    if (dataFile === '') {
      // QEMU then writes no name, which leaves an image no program can open.
      throw unsupported("amend: data_file='' would leave an image whose data file has no name (QEMU writes such an image); not done");
    }
    const at = st.extensions.findIndex((e) => e.kind === 'data-file');
    if (at >= 0) st.extensions[at] = { kind: 'data-file', name: dataFile };
  }
  await writeHeader(st);
}

/** lazy_refcounts: on sets the compatible bit; off first makes the image clean (refcounts on disk, dirty bit cleared). */
export async function setLazyRefcounts(st: Qcow2State, on: boolean, version: 2 | 3): Promise<void> {
  const now = (st.header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n;
  if (now === on) return;
  if (on) {
    if (version < 3) throw usage('Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)');
    st.header.compatibleFeatures |= COMPAT_LAZY_REFCOUNTS;
    st.features.lazyRefcounts = true;
    await writeHeader(st);
    return;
  }
  await markClean(st);
  st.header.compatibleFeatures &= ~COMPAT_LAZY_REFCOUNTS;
  st.features.lazyRefcounts = false;
  st.lazyRefcounts = false;
  await writeHeader(st);
}

/** qcow2_mark_clean: everything (refcounts included) on disk, then the dirty bit cleared. */
async function markClean(st: Qcow2State): Promise<void> {
  if (!st.features.dirty) return;
  await allOnDisk(st);
  await setDirtyBit(st, false);
  await st.file.flush();
}

/**
 * compat=0.10 (qcow2_downgrade): QEMU's refusals in its order, then the image made clean, every
 * feature bit cleared, zero clusters expanded, a zstd image without compressed clusters made zlib;
 * then the header says version 2 (72 bytes, no feature table). Persistent bitmaps, which a version
 * 2 image cannot keep, are dropped with their clusters freed (QEMU leaves their extension and
 * clusters behind, leaked; `qemu-img info` then lists none either).
 */
export async function downgradeToV2(st: Qcow2State, onProgress?: (done: number, total: number) => void): Promise<void> {
  if (st.header.version < 3) return;
  if (st.geometry.refcountOrder !== 4) throw usage('compat=0.10 requires refcount_bits=16');
  if (st.features.externalDataFile) throw usage('Cannot downgrade an image with a data file');
  const diskSize = BigInt(st.geometry.virtualSize);
  for (const sn of await st.store.readSnapshots()) {
    const vmState = sn.extra.vmStateSizeLarge ?? BigInt(sn.vmStateSize);
    if (vmState > 0xffff_ffffn || (sn.extra.diskSize ?? diskSize) !== diskSize) throw usage('Internal snapshots prevent downgrade of image');
  }
  if (st.header.incompatibleFeatures & INCOMPAT_DIRTY) await markClean(st);
  const incompatible = st.header.incompatibleFeatures & ~INCOMPAT_COMPRESSION;
  if (incompatible !== 0n) throw usage(`Cannot downgrade an image with incompatible features 0x${incompatible.toString(16)} set`);
  if (st.extensions.some((e) => e.kind === 'bitmaps')) {
    throw unsupported('amend: downgrading an image with persistent bitmaps is not supported (QEMU leaves them behind as leaked clusters)');
  }
  st.header.compatibleFeatures = 0n;
  st.header.autoclearFeatures = 0n;
  st.features.lazyRefcounts = false;
  st.lazyRefcounts = false;
  await expandZeroClusters(st, onProgress);
  if (st.header.incompatibleFeatures & INCOMPAT_COMPRESSION) {
    if (await hasCompressedClusters(st)) throw usage('Cannot downgrade an image with zstd compression type and existing compressed clusters');
    st.header.incompatibleFeatures &= ~INCOMPAT_COMPRESSION;
    st.header.compressionType = COMPRESSION_DEFLATE;
  }
  await allOnDisk(st);
  st.header.version = 2;
  st.extensions = st.extensions.filter((e) => e.kind !== 'feature-table');
  await writeHeader(st, true);
  await st.file.flush();
}

/** Whether the active tables map any compressed cluster (qcow2_has_compressed_clusters). */
async function hasCompressedClusters(st: Qcow2State): Promise<boolean> {
  for (const l2 of await st.store.readL1Table(Number(st.header.l1TableOffset), st.header.l1Size)) {
    if (l2 === 0) continue;
    if ((await st.store.l2Table(l2)).some((m) => m.kind === 'compressed')) return true;
  }
  return false;
}

/** Every change made so far on disk: the engine's cached metadata written back, then the file flushed. */
export async function allOnDisk(st: Qcow2State): Promise<void> {
  await st.store.beforeRefcountRewrite();
  await st.dataFile?.flush();
  await st.file.flush();
}
