/**
 * Cluster 0 (header, extensions, end marker, backing file name), rewritten whole whenever it
 * changes, and the dirty bit (incompatible bit 0) with the updates that run under it.
 */
import { corrupt, isQcow2Error } from '../errors.js';
import { encodeString } from '../format/bytes.js';
import { INCOMPAT_DIRTY } from '../format/constants.js';
import { encodeExtensions, type HeaderExtension } from '../format/extensions.js';
import { encodeHeader, type Header } from '../format/header.js';
import type { Qcow2State } from './state.js';

/**
 * The bytes of cluster 0: header, extensions, then the backing file name right after them. Sets
 * the header's backing-name fields to where the name lands.
 */
export function encodeHeaderCluster(header: Header, extensions: readonly HeaderExtension[], backingName: string | undefined, clusterSize: number): Uint8Array {
  const name = backingName === undefined ? undefined : encodeString(backingName);
  const exts = encodeExtensions(extensions);
  const headerBytes = encodeHeader({ ...header, backingFileOffset: 0n, backingFileSize: 0 });
  const nameOffset = headerBytes.byteLength + exts.byteLength;
  const total = nameOffset + (name?.byteLength ?? 0);
  if (total > clusterSize) {
    throw corrupt(`header, extensions and backing name need ${total} bytes, more than one cluster`, { field: 'header' });
  }
  header.backingFileOffset = name ? BigInt(nameOffset) : 0n;
  header.backingFileSize = name?.byteLength ?? 0;
  const out = new Uint8Array(total);
  out.set(encodeHeader(header), 0);
  out.set(exts, headerBytes.byteLength);
  if (name) out.set(name, nameOffset);
  return out;
}

/**
 * Writes cluster 0's header, extensions and backing name. `wholeCluster`: the rest of the cluster
 * is written as zeros in the same write (as QEMU's qcow2_update_header always does), for a header
 * that gets shorter, so nothing of the longer one stays behind it.
 */
export async function writeHeader(st: Qcow2State, wholeCluster = false): Promise<void> {
  const bytes = encodeHeaderCluster(st.header, st.extensions, st.backingName, st.geometry.clusterSize);
  if (!wholeCluster) return st.store.writeThrough(0, bytes, 'header');
  const cluster = new Uint8Array(st.geometry.clusterSize);
  cluster.set(bytes);
  await st.store.writeThrough(0, cluster, 'header');
}

/** Sets or clears the dirty bit on disk. */
export async function setDirtyBit(st: Qcow2State, dirty: boolean): Promise<void> {
  if (dirty) st.header.incompatibleFeatures |= INCOMPAT_DIRTY;
  else st.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
  st.features.dirty = dirty;
  await writeHeader(st);
}

/**
 * Runs an update whose steps cannot all land at once (snapshot create, apply, delete: refcounts
 * and COPIED flags change together) with the dirty bit set, so that a crash in between leaves an
 * image whose refcounts are rebuilt on the next open. v2 images have no dirty bit.
 */
export async function underDirtyBit<T>(st: Qcow2State, fn: () => Promise<T>): Promise<T> {
  if (st.header.version < 3) return fn();
  const wasDirty = st.features.dirty;
  if (!wasDirty) await setDirtyBit(st, true);
  let out: T;
  try {
    out = await fn();
  } catch (err) {
    // A usage error (no such snapshot…) comes before any change; anything else may have stopped
    // half way: the bit then stays set, even at close, so the next open repairs.
    if (isQcow2Error(err) && err.code === 'usage') {
      if (!wasDirty) await setDirtyBit(st, false);
    } else st.keepDirty = true;
    throw err;
  }
  // Lazy refcounts keep it set until close.
  if (!wasDirty && !st.lazyRefcounts) await setDirtyBit(st, false);
  return out;
}
