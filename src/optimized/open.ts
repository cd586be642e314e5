/**
 * Opening an image with the optimized engine: the shared opening steps (src/qcow2/open.ts), then
 * the L1 and refcount tables into memory, the two caches, the optimized store, and repair of an
 * image left dirty.
 */
import { type Codec, inlineCodec } from '../compress/codec.js';
import { sharedPool, WorkerPool } from '../compress/pool.js';
import type { BlockDevice, OpenOptions } from '../engine/types.js';
import { usage } from '../errors.js';
import { DEFAULT_L2_CACHE_MAX_BYTES, DEFAULT_REFCOUNT_CACHE_BYTES } from '../limits.js';
import type { Geometry } from '../format/geometry.js';
import { hostRangeFits } from '../format/host-offset.js';
import { decodeL1Table } from '../format/l1.js';
import { decodeRefcountTableEntry } from '../format/refcount.js';
import { view } from '../format/bytes.js';
import type { ImageMetadata } from '../image/metadata.js';
import type { BlockFile } from '../io/block-file.js';
import { BarrierFile } from '../io/barrier-file.js';
import { commonState, openLayers, repairIfDirty, withStore } from '../qcow2/open.js';
import type { FilePaths } from '../qcow2/state.js';
import type { SectorCipher } from '../crypto/luks-cipher.js';
import { FlushOrder } from './flush-order.js';
import { OptimizedImage } from './image.js';
import { Mutex } from './mutex.js';
import type { OptState } from './state.js';
import { OptimizedStore } from './store.js';
import { TableCache } from './table-cache.js';


export interface OptimizedOpenOptions extends OpenOptions {
  l2CacheBytes?: number;
  refcountCacheBytes?: number;
}

export async function openOptimized(path: string, opts: OptimizedOpenOptions = {}, depth = 0): Promise<OptimizedImage> {
  const layers = await openLayers(path, opts, depth, openOptimized);
  try {
    return await openOnFiles(layers.file, layers.dataFile, layers.backing, layers.meta, opts, layers.paths, layers.crypto);
  } catch (err) {
    await layers.close().catch(() => {});
    throw err;
  }
}

/**
 * The L2 cache budget unless told otherwise, as QEMU sizes it: the L2 tables that map the whole
 * virtual disk, at most DEFAULT_L2_CACHE_MAX_BYTES, at least two clusters. A smaller cache makes
 * random writes over a large image evict dirty tables, each eviction a write-back behind a flush.
 */
export function defaultL2CacheBytes(g: Geometry): number {
  const tables = Math.ceil(g.virtualSize / (g.l2Entries * g.clusterSize));
  return Math.max(2 * g.clusterSize, Math.min(DEFAULT_L2_CACHE_MAX_BYTES, tables * g.clusterSize));
}

/** Builds the engine over open files (also used by tests with in-memory files). */
export async function openOnFiles(
  plainFile: BlockFile,
  plainDataFile: BlockFile | undefined,
  backing: BlockDevice | undefined,
  meta: ImageMetadata,
  opts: OptimizedOpenOptions = {},
  paths?: FilePaths,
  crypto?: SectorCipher,
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
  // Block offsets, -1 for an entry no block can be at; most entries of a table are 0 (no block).
  const rtView = view(rtBytes);
  const refcountTable: number[] = new Array<number>(rtBytes.byteLength / 8).fill(0);
  for (let i = 0; i < refcountTable.length; i++) {
    if (rtView.getUint32(i * 8) === 0 && rtView.getUint32(i * 8 + 4) === 0) continue;
    const e = decodeRefcountTableEntry(rtView, i * 8);
    refcountTable[i] = e.offsetHighBits !== 0 || e.blockOffset % C !== 0 || !hostRangeFits(e.blockOffset, C) ? -1 : e.blockOffset;
  }
  const l2Cache = new TableCache('l2', file, C, opts.l2CacheBytes ?? defaultL2CacheBytes(geometry), 'l2');
  const refcountCache = new TableCache('refcount', file, C, opts.refcountCacheBytes ?? DEFAULT_REFCOUNT_CACHE_BYTES, 'refcount-block');
  const state: OptState = withStore(
    {
      ...commonState(meta, { file, dataFile, backing, crypto }, readOnly, paths),
      file,
      dataFile,
      lazyRefcounts: features.lazyRefcounts && header.version >= 3,
      l1Offsets: l1.map((e) => e.l2Offset),
      l1Copied: l1.map((e) => e.copied),
      refcountTable,
      l2Cache,
      refcountCache,
      order: new FlushOrder(file, dataFile, l2Cache, refcountCache),
      meta: new Mutex(),
      fileEnd: await file.size(),
      metadataMap: undefined,
      compressedCursor: 0,
      codec: codecFor(opts.compressionThreads),
    },
    (s) => new OptimizedStore(s),
  );
  await repairIfDirty(state);
  return new OptimizedImage(state);
}

function codecFor(threads: number | undefined): Codec {
  if (threads === undefined) return sharedPool();
  if (!Number.isInteger(threads) || threads < 0) throw usage(`compression threads must be a whole number, not ${threads}`);
  return threads === 0 ? inlineCodec : new WorkerPool(threads);
}
