/** The optimized engine's own uses of the header: runtime corruption, and the dirty bit of lazy refcounts. */
import { INCOMPAT_CORRUPT } from '../format/constants.js';
import { setDirtyBit } from '../qcow2/header.js';
import type { OptState } from './state.js';

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

/**
 * Lazy refcounts (compatible bit 0, v3): before the first refcount increase the image is marked
 * dirty; from then on refcount blocks need not reach the disk before the L2 entries that count
 * on them (a crash leaves stale refcounts, rebuilt on the next open). Close clears the bit.
 * Returns true when lazy refcounts are in force.
 */
export async function beforeLazyIncrement(st: OptState): Promise<boolean> {
  if (!st.lazyRefcounts || st.readOnly) return false;
  if (!st.features.dirty) await setDirtyBit(st, true);
  return true;
}
