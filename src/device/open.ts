/**
 * The composition root: the one place that turns a path and a user's choices into an open device.
 * The CLI, the library API, the tests and the servers all open images here. qcow2 images open with
 * the optimized engine (what every user-facing path runs on; the reference engine in
 * src/reference is the specification it is checked against); raw images with the raw adapter.
 */
import type { BlockDevice, Qcow2Device, SnapshotRef } from '../engine/types.js';
import { RawDevice } from '../engine/raw.js';
import { usage } from '../errors.js';
import type { BlockFile } from '../io/block-file.js';
import { driving, type FileDriving, NodeFile } from '../io/node-file.js';
import { CRYPT_LUKS } from '../format/constants.js';
import { unlockImage } from '../qcow2/crypt-data.js';
import { openOptimized } from '../optimized/open.js';
import type { ImageMetadata } from '../image/metadata.js';
import { openLinkedFiles } from '../qcow2/open.js';
import { type ImageFormat, probeFormat } from '../engine/probe.js';

export { probeFormat, type ImageFormat } from '../engine/probe.js';

export interface OpenImageOptions extends FileDriving {
  /** Without it the format is probed: 'QFI\xfb' at offset 0 means qcow2, anything else raw. */
  format?: ImageFormat;
  readOnly?: boolean;
  /** Do not follow backing / data file names stored in the image (an image from an untrusted source). */
  untrusted?: boolean;
  /** Open the image as it was at this internal snapshot; qcow2 and read-only only. */
  snapshot?: SnapshotRef;
  /** Open this backing file instead of the one the image names (qemu's `-b`), or none at all (null). */
  backing?: { path: string; format: 'raw' | 'qcow2' } | null;
  /** Metadata cache budgets of the optimized engine, in bytes (qemu's l2-cache-size, refcount-cache-size). */
  cache?: { l2Bytes?: number; refcountBytes?: number };
  /** Worker threads for compressed clusters: default the shared pool; 0 works on the calling thread. */
  compressionThreads?: number;
  /** A layer between the engine and the image file and its data file (tests: faults, recording). */
  wrapFile?: (file: BlockFile, role: 'image' | 'data-file') => BlockFile;
  /** The passphrase of a LUKS-encrypted qcow2 image (QEMU's encrypt.key-secret); the caller zeroes it. */
  keySecret?: Uint8Array;
  /** Those of the encrypted images of its backing chain, nearest first (QEMU's backing.encrypt.key-secret). */
  backingKeys?: readonly (Uint8Array | undefined)[];
}

/** An image's passphrases, as an open takes them. */
export type ImageKeys = Pick<OpenImageOptions, 'keySecret' | 'backingKeys'>;

export async function openImage(path: string, opts: OpenImageOptions = {}): Promise<BlockDevice> {
  const format = opts.format ?? (await probeFormat(path));
  if (format === 'raw' && opts.snapshot !== undefined) throw usage('a raw image has no internal snapshots');
  if (format === 'raw') return RawDevice.open(path, { readOnly: opts.readOnly ?? false, ...driving(opts) });
  return openQcow2(path, opts);
}

/** A qcow2 image, on the optimized engine. */
export async function openQcow2(path: string, opts: Omit<OpenImageOptions, 'format'> = {}): Promise<Qcow2Device> {
  return openOptimized(path, {
    readOnly: opts.readOnly ?? false,
    ...(opts.untrusted ? { followFileNames: false } : {}),
    ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}),
    ...(opts.backing !== undefined ? { backingOverride: opts.backing } : {}),
    ...(opts.cache?.l2Bytes !== undefined ? { l2CacheBytes: opts.cache.l2Bytes } : {}),
    ...(opts.cache?.refcountBytes !== undefined ? { refcountCacheBytes: opts.cache.refcountBytes } : {}),
    ...(opts.compressionThreads !== undefined ? { compressionThreads: opts.compressionThreads } : {}),
    ...(opts.wrapFile ? { wrapFile: opts.wrapFile } : {}),
    ...(opts.keySecret ? { keySecret: opts.keySecret } : {}),
    ...(opts.backingKeys ? { backingKeys: opts.backingKeys } : {}),
    ...driving(opts),
  });
}

/**
 * Opens, then closes, what an image links to (its external data file, its backing chain) and
 * applies the rules QEMU applies only when it opens an image for I/O (src/qcow2/open.ts,
 * openLinkedFiles), read-only. Throws the typed error of the first that fails: `qcow2 check` runs
 * this where `qemu-img check` would fail to open the image (src/cli/check.ts).
 */
export async function probeLinkedFiles(path: string, file: BlockFile, meta: ImageMetadata, keys: ImageKeys = {}): Promise<void> {
  const { keySecret, backingKeys } = keys;
  if (meta.header.cryptMethod === CRYPT_LUKS && meta.cryptoHeader !== undefined) {
    // qemu-img check opens the image: a LUKS image needs its passphrase, and the right one (first,
    // as QEMU unlocks it before it opens the backing chain).
    (await unlockImage(file, meta, keySecret)).destroy();
  }
  const linked = await openLinkedFiles(path, file, meta, { readOnly: true, ...(backingKeys ? { backingKeys } : {}) }, 0, openOptimized);
  await linked.close();
}

