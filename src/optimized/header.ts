/** Rewriting cluster 0 (header, extensions, backing name), after everything it points to. */
import { corrupt, isQcow2Error } from '../errors.js';
import { encodeString } from '../format/bytes.js';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from '../format/constants.js';
import { encodeExtensions } from '../format/extensions.js';
import { encodeHeader } from '../format/header.js';
import { forgetMetadataMap } from './overlap.js';
import type { OptState } from './state.js';

export async function writeHeader(st: OptState): Promise<void> {
  forgetMetadataMap(st); // the tables it names may have moved
  const name = st.backingName === undefined ? undefined : encodeString(st.backingName);
  const exts = encodeExtensions(st.extensions);
  const headerBytes = encodeHeader({ ...st.header, backingFileOffset: 0n, backingFileSize: 0 });
  const nameOffset = headerBytes.byteLength + exts.byteLength;
  const total = nameOffset + (name?.byteLength ?? 0);
  if (total > st.geometry.clusterSize) {
    throw corrupt(`header, extensions and backing name need ${total} bytes, more than one cluster`, { field: 'header' });
  }
  st.header.backingFileOffset = name ? BigInt(nameOffset) : 0n;
  st.header.backingFileSize = name?.byteLength ?? 0;
  const out = new Uint8Array(total);
  out.set(encodeHeader(st.header), 0);
  out.set(exts, headerBytes.byteLength);
  if (name) out.set(name, nameOffset);
  await st.order.writeThrough(0, out, 'header');
  forgetMetadataMap(st);
}

/**
 * Runtime corruption (an impossible entry met by a request): the image is marked corrupt on disk
 * (v3, when writable: only the incompatible features field is written, nothing the corruption may
 * have touched) and this engine refuses every later write, as QEMU does.
 */
export async function signalCorruption(st: OptState): Promise<void> {
  if (st.features.corrupt) return;
  st.features.corrupt = true;
  if (st.readOnly || st.header.version < 3) return;
  st.header.incompatibleFeatures |= INCOMPAT_CORRUPT;
  const field = new Uint8Array(8);
  new DataView(field.buffer).setBigUint64(0, st.header.incompatibleFeatures);
  await st.file.write(72, field, 'header');
  await st.file.flush();
}


/** Sets or clears the dirty bit (incompatible bit 0) on disk. */
export async function setDirtyBit(st: OptState, dirty: boolean): Promise<void> {
  if (dirty) st.header.incompatibleFeatures |= INCOMPAT_DIRTY;
  else st.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
  st.features.dirty = dirty;
  await writeHeader(st);
}

/**
 * Lazy refcounts (compatible bit 0, v3): before the first refcount increase the image is marked
 * dirty; from then on refcount blocks need not reach the disk before the L2 entries that count
 * on them (a crash leaves stale refcounts, rebuilt on the next open). Close clears the bit.
 */
export async function beforeLazyIncrement(st: OptState): Promise<boolean> {
  if (!st.features.lazyRefcounts || st.header.version < 3 || st.readOnly) return false;
  if (!st.features.dirty) await setDirtyBit(st, true);
  return true;
}

/**
 * Runs an update whose steps cannot all land at once (snapshot create, apply, delete: refcounts
 * and COPIED flags change together) with the dirty bit set, so that a crash in between leaves an
 * image whose refcounts are rebuilt on the next open. v2 images have no dirty bit.
 */
export async function underDirtyBit<T>(st: OptState, fn: () => Promise<T>): Promise<T> {
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
  if (!wasDirty && !st.features.lazyRefcounts) await setDirtyBit(st, false);
  return out;
}
