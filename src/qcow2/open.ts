/**
 * Opening a qcow2 image, the part both engines share: the image file (wrapped for tests), its
 * checked metadata (src/image/metadata.ts), its external data file and backing chain (names are
 * resolved against the image's folder; the untrusted-image policy refuses to follow them), the
 * state fields every engine keeps, and the repair of an image left dirty. Everything opened is
 * closed again when a later step fails.
 */
import { openBacking, type OpenQcow2 } from '../engine/backing.js';
import { linkedPath } from '../engine/linked-path.js';
import type { BlockDevice, OpenOptions } from '../engine/types.js';
import { corrupt, unsupported, usage } from '../errors.js';
import { AUTOCLEAR_DATA_FILE_RAW, BITMAP_FLAG_AUTO, CRYPT_AES, CRYPT_LUKS, INCOMPAT_DIRTY } from '../format/constants.js';
import type { SectorCipher } from '../crypto/luks-cipher.js';
import { legacyAesCipher, unlockImage } from './crypt-data.js';
import { type ImageMetadata, readMetadata } from '../image/metadata.js';
import { type BlockFile, closeAll } from '../io/block-file.js';
import { driving, NodeFile } from '../io/node-file.js';
import { writeHeader } from './header.js';
import { checkBitmapTables } from './bitmap-read.js';
import { rebuildRefcounts } from './rebuild.js';
import { snapshotView } from './snapshots.js';
import type { FilePaths, MetadataStore, Qcow2State } from './state.js';

export interface OpenedLayers {
  file: BlockFile;
  dataFile: BlockFile | undefined;
  backing: BlockDevice | undefined;
  meta: ImageMetadata;
  paths: FilePaths;
  /** A LUKS image's payload cipher, unlocked with opts.keySecret. */
  crypto: SectorCipher | undefined;
  /** Closes all of the above (after a failure). */
  close(): Promise<void>;
}

/** Opens the image file, reads its metadata, then its data file and backing chain. */
export async function openLayers<O extends OpenOptions>(path: string, opts: O, depth: number, openQcow2: OpenQcow2<O>): Promise<OpenedLayers> {
  const readOnly = opts.readOnly ?? false;
  const nodeFile = await NodeFile.open(path, { readOnly, ...driving(opts) });
  const file = opts.wrapFile ? opts.wrapFile(nodeFile, 'image') : nodeFile;
  let linked: LinkedFiles | undefined;
  let crypto: SectorCipher | undefined;
  const close = () => closeAll([() => linked?.close(), () => file.close(), async () => crypto?.destroy()]);
  try {
    if (opts.snapshot !== undefined && !readOnly) throw usage('an internal snapshot can only be opened read-only');
    const active = await readMetadata(file);
    const meta = opts.snapshot === undefined ? active : snapshotView(active, opts.snapshot);
    const { features } = meta.layout;
    if (meta.header.cryptMethod === CRYPT_AES && !readOnly) {
      throw unsupported('legacy AES-CBC encrypted images (crypt_method 1) can only be opened read-only (-r): writing them is not supported', { field: 'crypt_method', offset: 32 });
    }
    if (meta.header.cryptMethod !== 0 && meta.header.cryptMethod !== CRYPT_LUKS && meta.header.cryptMethod !== CRYPT_AES) {
      throw unsupported(`crypt_method ${meta.header.cryptMethod} is not supported`, { field: 'crypt_method', offset: 32 });
    }
    if (features.corrupt && !readOnly) {
      throw corrupt('the image is marked corrupt: it can only be opened read-only', { field: 'incompatible_features', offset: 72 });
    }
    // As QEMU: the LUKS header is unlocked as the image's extensions are read, before its data file
    // and backing chain are opened (an image without one is refused by openLinkedFiles).
    if (meta.header.cryptMethod === CRYPT_LUKS && meta.cryptoHeader !== undefined) crypto = await unlockImage(file, meta, opts.keySecret);
    linked = await openLinkedFiles(path, file, meta, opts, depth, openQcow2);
    if (meta.header.cryptMethod === CRYPT_AES) crypto = legacyAesCipher(opts.keySecret);
    return { file, dataFile: linked.dataFile, backing: linked.backing, meta, paths: { image: path, dataFile: linked.dataPath }, crypto, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}

export interface LinkedFiles {
  dataFile: BlockFile | undefined;
  dataPath: string | undefined;
  backing: BlockDevice | undefined;
  /** Closes both. */
  close(): Promise<void>;
}

/**
 * What opening an image for I/O needs beyond its metadata, as QEMU's qcow2_do_open() and the block
 * layer need it: the raw-data-file bit only with a data file, a LUKS image's crypto header
 * extension, sound tables for the consistent bitmaps, the external data file, the backing chain. `qcow2 check` runs this too, so that it fails where qemu-img check cannot open the image
 * (src/cli/check.ts). On failure everything opened here is closed again.
 */
export async function openLinkedFiles<O extends OpenOptions>(
  path: string,
  file: BlockFile,
  meta: ImageMetadata,
  opts: O,
  depth: number,
  openQcow2: OpenQcow2<O>,
): Promise<LinkedFiles> {
  const readOnly = opts.readOnly ?? false;
  const { features } = meta.layout;
  let dataFile: BlockFile | undefined;
  let backing: BlockDevice | undefined;
  const close = () => closeAll([() => backing?.close(), () => dataFile?.close()]);
  try {
    await refuseWhatQemuOpensNot(file, meta);
    let dataPath: string | undefined;
    if (features.externalDataFile) {
      if (meta.dataFile === undefined) throw unsupported('the image uses an external data file but does not name it');
      dataPath = linkedPath(path, meta.dataFile, 'data file', opts);
      const plain = await NodeFile.open(dataPath, { readOnly, ...driving(opts) });
      dataFile = opts.wrapFile ? opts.wrapFile(plain, 'data-file') : plain;
    }
    backing = await openBacking(path, meta.backingFile, meta.backingFormat, opts, depth, openQcow2);
    return { dataFile, dataPath, backing, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}

/**
 * The rules QEMU applies to an image's own metadata when it opens it for I/O (beyond readMetadata's,
 * which hold for every open): the raw-data-file bit only with a data file, a LUKS image's crypto
 * header extension, sound tables for the consistent bitmaps. The fuzzer's check verdict applies
 * them too (src/verification/fuzz/qemu.ts), as `qcow2 check` does through openLinkedFiles.
 */
export async function refuseWhatQemuOpensNot(file: Pick<BlockFile, 'read' | 'size'>, meta: ImageMetadata): Promise<void> {
  if ((meta.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n && !meta.layout.features.externalDataFile) {
    // QEMU refuses this when it opens the image for I/O ("data-file-raw requires a data file");
    // qemu-img info, which does no I/O, shows it (and so do we: this is not in readMetadata).
    throw corrupt('autoclear bit 1 (raw external data) is set but the image has no external data file', { field: 'autoclear_features', offset: 88 });
  }
  if (meta.header.cryptMethod === CRYPT_LUKS && meta.cryptoHeader === undefined) {
    // QEMU, opening for I/O: "Missing CRYPTO header for crypt method 2".
    throw corrupt('crypt_method is 2 (LUKS) but the image has no full disk encryption header extension', { field: 'crypt_method', offset: 32 });
  }
  await checkBitmapTables(file, meta);
}

/** The state fields both engines keep, from an image's metadata. */
export function commonState(
  meta: ImageMetadata,
  files: Pick<Qcow2State, 'file' | 'dataFile' | 'backing'> & { crypto?: SectorCipher | undefined },
  readOnly: boolean,
  paths: FilePaths = { image: undefined, dataFile: undefined },
): Omit<Qcow2State, 'store' | 'lazyRefcounts'> {
  const { features } = meta.layout;
  return {
    file: files.file,
    dataFile: files.dataFile,
    backing: files.backing,
    crypto: files.crypto,
    paths,
    header: meta.header,
    extensions: meta.extensions,
    backingName: meta.backingFile,
    geometry: meta.layout.geometry,
    features: { ...features },
    readOnly,
    activeBitmaps: features.bitmapsConsistent && meta.bitmaps.some((b) => (b.flags & BITMAP_FLAG_AUTO) !== 0),
    snapshotTableBytes: meta.snapshotTableSize,
    freeHint: 0,
    keepDirty: false,
  };
}

/** Completes a state with its engine's store. */
export function withStore<S extends Omit<Qcow2State, 'store'>>(partial: S, store: (st: S & { store: MetadataStore }) => MetadataStore): S & { store: MetadataStore } {
  const st = partial as S & { store: MetadataStore };
  st.store = store(st);
  return st;
}

/** An image left dirty (lazy refcounts, or an update that stopped half way) gets its refcounts rebuilt. */
export async function repairIfDirty(st: Qcow2State): Promise<void> {
  if (!st.features.dirty || st.readOnly) return;
  await rebuildRefcounts(st);
  st.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
  st.features.dirty = false;
  await writeHeader(st);
}
