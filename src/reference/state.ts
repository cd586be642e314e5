/**
 * The reference engine's state: the open files and the header, which is the root of everything
 * else and is rewritten whole whenever it changes. Nothing below the header is kept in memory.
 */
import { corrupt, isQcow2Error } from '../errors.js';
import { encodeString } from '../format/bytes.js';
import { INCOMPAT_DIRTY } from '../format/constants.js';
import { encodeExtensions, type HeaderExtension } from '../format/extensions.js';
import type { Geometry } from '../format/geometry.js';
import { encodeHeader, type Header } from '../format/header.js';
import type { Features } from '../format/validate.js';
import type { BlockDevice } from '../engine/types.js';
import type { DurableFile } from './durable-file.js';

export interface RefState {
  /** Every write flushed before it returns (durable-file.ts). */
  file: DurableFile;
  /** External data file, when the image has one; guest clusters live there at their guest offset. */
  dataFile: DurableFile | undefined;
  header: Header;
  extensions: HeaderExtension[];
  backingName: string | undefined;
  geometry: Geometry;
  features: Features;
  backing: BlockDevice | undefined;
  readOnly: boolean;
  /** The image has enabled ('auto') persistent bitmaps that are consistent: snapshots cannot be applied. */
  activeBitmaps: boolean;
  /** Bytes the snapshot table takes (entries and their padding); follows every table rewrite. */
  snapshotTableBytes: number;
  /** Lowest cluster index that may be free; only a search hint, never a statement about refcounts. */
  freeHint: number;
}

export function clusterSize(st: RefState): number {
  return st.geometry.clusterSize;
}

/** Rewrites cluster 0: header, extensions, end marker, then the backing file name. */
export async function writeHeader(st: RefState): Promise<void> {
  const name = st.backingName === undefined ? undefined : encodeString(st.backingName);
  const exts = encodeExtensions(st.extensions);
  const headerBytes = encodeHeader({ ...st.header, backingFileOffset: 0n, backingFileSize: 0 });
  const nameOffset = headerBytes.byteLength + exts.byteLength;
  const total = nameOffset + (name?.byteLength ?? 0);
  if (total > clusterSize(st)) {
    throw corrupt(`header, extensions and backing name need ${total} bytes, more than one cluster`, { field: 'header' });
  }
  st.header.backingFileOffset = name ? BigInt(nameOffset) : 0n;
  st.header.backingFileSize = name?.byteLength ?? 0;
  const out = new Uint8Array(total);
  out.set(encodeHeader(st.header), 0);
  out.set(exts, headerBytes.byteLength);
  if (name) out.set(name, nameOffset);
  await st.file.write(0, out, 'header');
}


/**
 * Runs an update whose steps cannot all land at once (snapshot create, apply, delete: refcounts
 * and COPIED flags change together) with the dirty bit set, so that a crash in between leaves an
 * image whose refcounts are rebuilt on the next open. v2 images have no dirty bit.
 */
export async function underDirtyBit<T>(st: RefState, fn: () => Promise<T>): Promise<T> {
  if (st.header.version < 3 || st.features.dirty) return fn();
  await setDirtyBit(st, true);
  let out: T;
  try {
    out = await fn();
  } catch (err) {
    // A usage error (no such snapshot…) comes before any change; after anything else the bit
    // stays set, so the next open repairs.
    if (isQcow2Error(err) && err.code === 'usage') await setDirtyBit(st, false);
    throw err;
  }
  await setDirtyBit(st, false);
  return out;
}

async function setDirtyBit(st: RefState, dirty: boolean): Promise<void> {
  if (dirty) st.header.incompatibleFeatures |= INCOMPAT_DIRTY;
  else st.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
  st.features.dirty = dirty;
  await writeHeader(st);
}

/** The error that stopped this engine from changing the image, if a metadata write or flush failed. */
export function poisoned(st: RefState): Error | undefined {
  return st.file.failure ?? st.dataFile?.failure;
}
