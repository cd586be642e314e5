/**
 * Opening an image with the optimized engine: checked metadata (src/image/metadata.ts), the L1 and
 * refcount tables into memory, the two caches, then the external data file, the backing chain (same
 * policy as the reference engine) and repair of an image left dirty.
 */
import { type Codec, inlineCodec } from '../compress/codec.js';
import { sharedPool, WorkerPool } from '../compress/pool.js';
import { openBacking } from '../engine/backing.js';
import { linkedPath } from '../engine/linked-path.js';
import type { BlockDevice, OpenOptions } from '../engine/types.js';
import { corrupt, unsupported, usage } from '../errors.js';
import { BITMAP_FLAG_AUTO, INCOMPAT_DIRTY } from '../format/constants.js';
import { decodeL1Table } from '../format/l1.js';
import { decodeRefcountTable } from '../format/refcount.js';
import { readMetadata } from '../image/metadata.js';
import type { BlockFile } from '../io/block-file.js';
import { BarrierFile } from '../io/barrier-file.js';
import { driving, NodeFile } from '../io/node-file.js';
import { FlushOrder } from './flush-order.js';
import { writeHeader } from './header.js';
import { OptimizedImage } from './image.js';
import { Mutex } from './mutex.js';
import { rebuildRefcounts } from './rebuild.js';
import type { OptState } from './state.js';
import { TableCache } from './table-cache.js';

/** Enough L2 to map 8 GiB of an image with 64 KiB clusters. */
export const DEFAULT_L2_CACHE_BYTES = 1 << 20;
export const DEFAULT_REFCOUNT_CACHE_BYTES = 256 << 10;

export interface OptimizedOpenOptions extends OpenOptions {
  l2CacheBytes?: number;
  refcountCacheBytes?: number;
}

export async function openOptimized(path: string, opts: OptimizedOpenOptions = {}, depth = 0): Promise<OptimizedImage> {
  const readOnly = opts.readOnly ?? false;
  const nodeFile = await NodeFile.open(path, { readOnly, ...driving(opts) });
  const file = opts.wrapFile ? opts.wrapFile(nodeFile, 'image') : nodeFile;
  const opened: BlockDevice[] = [];
  try {
    let dataFile: BlockFile | undefined;
    const meta = await readMetadata(file);
    if (meta.header.cryptMethod !== 0) throw unsupported('encrypted images can be described (info) but not read or written');
    if (meta.layout.features.corrupt && !readOnly) {
      throw corrupt('the image is marked corrupt: it can only be opened read-only', { field: 'incompatible_features', offset: 72 });
    }
    if (meta.layout.features.externalDataFile) {
      if (meta.dataFile === undefined) throw unsupported('the image uses an external data file but does not name it');
      const plain = await NodeFile.open(linkedPath(path, meta.dataFile, 'data file', opts), { readOnly, ...driving(opts) });
      dataFile = opts.wrapFile ? opts.wrapFile(plain, 'data-file') : plain;
    }
    const backing = await openBacking(path, meta.backingFile, meta.backingFormat, opts, depth, openOptimized);
    if (backing) opened.push(backing);
    const image = await openOnFiles(file, dataFile, backing, meta, opts);
    return image;
  } catch (err) {
    for (const d of opened) await d.close();
    await file.close();
    throw err;
  }
}

/** Builds the engine over open files (also used by tests with in-memory files). */
export async function openOnFiles(
  plainFile: BlockFile,
  plainDataFile: BlockFile | undefined,
  backing: BlockDevice | undefined,
  meta: Awaited<ReturnType<typeof readMetadata>>,
  opts: OptimizedOpenOptions = {},
): Promise<OptimizedImage> {
  const readOnly = opts.readOnly ?? plainFile.readOnly;
  const file = new BarrierFile(plainFile);
  const dataFile = plainDataFile && new BarrierFile(plainDataFile);
  const { features, geometry } = meta.layout;
  const C = geometry.clusterSize;
  const header = meta.header;
  const l1Bytes = new Uint8Array(header.l1Size * 8);
  if (header.l1Size > 0) l1Bytes.set(await file.read(Number(header.l1TableOffset), header.l1Size * 8));
  const l1 = decodeL1Table(l1Bytes, header.l1Size);
  const rtBytes = new Uint8Array(header.refcountTableClusters * C);
  rtBytes.set(await file.read(Number(header.refcountTableOffset), rtBytes.byteLength));
  const refcountTable = decodeRefcountTable(rtBytes, rtBytes.byteLength / 8).map((e) =>
    e.offsetHighBits !== 0 || e.blockOffset % C !== 0 ? -1 : e.blockOffset,
  );
  const l2Cache = new TableCache('l2', file, C, opts.l2CacheBytes ?? DEFAULT_L2_CACHE_BYTES, 'l2');
  const refcountCache = new TableCache('refcount', file, C, opts.refcountCacheBytes ?? DEFAULT_REFCOUNT_CACHE_BYTES, 'refcount-block');
  const state: OptState = {
    file,
    dataFile,
    header,
    extensions: meta.extensions,
    backingName: meta.backingFile,
    geometry,
    features: { ...features },
    backing,
    readOnly,
    activeBitmaps: features.bitmapsConsistent && meta.bitmaps.some((b) => (b.flags & BITMAP_FLAG_AUTO) !== 0),
    snapshotTableBytes: meta.snapshotTableSize,
    l1Offsets: l1.map((e) => e.l2Offset),
    l1Copied: l1.map((e) => e.copied),
    refcountTable,
    l2Cache,
    refcountCache,
    order: new FlushOrder(file, dataFile, l2Cache, refcountCache),
    meta: new Mutex(),
    freeHint: 0,
    fileEnd: await file.size(),
    metadataMap: undefined,
    keepDirty: false,
    compressedCursor: 0,
    codec: codecFor(opts.compressionThreads),
  };
  if (features.dirty && !readOnly) {
    await rebuildRefcounts(state);
    state.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
    state.features.dirty = false;
    await writeHeader(state);
  }
  return new OptimizedImage(state);
}

function codecFor(threads: number | undefined): Codec {
  if (threads === undefined) return sharedPool();
  if (!Number.isInteger(threads) || threads < 0) throw usage(`compression threads must be a whole number, not ${threads}`);
  return threads === 0 ? inlineCodec : new WorkerPool(threads);
}
