/**
 * Everything one check pass works with: the file, its validated metadata, the stored refcounts,
 * the counts found so far and the messages. Offsets in the metadata may change during a repair
 * (a rebuilt refcount table), so the pass reads them from here.
 */
import { CRYPT_LUKS } from '../format/constants.js';
import { maxRefcount } from '../format/refcount.js';
import type { ImageMetadata } from '../image/metadata.js';
import type { BlockFile } from '../io/block-file.js';
import { readPadded } from '../io/read-padded.js';
import { checkedFileLength } from './read.js';
import { RefcountStore, decodeRefcountTableRaw } from './refcount-store.js';
import type { InMemoryRefcounts } from './imrt.js';
import type { CheckCounts, FixMode } from './result.js';

export interface CheckContext {
  file: BlockFile;
  meta: ImageMetadata;
  clusterSize: number;
  clusterBits: number;
  extendedL2: boolean;
  l2Entries: number;
  l2EntryBytes: number;
  /** Guest data lives in an external data file: data clusters have no refcounts here. */
  dataFile: boolean;
  refcountMax: number;
  fileSize: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  store: RefcountStore;
  /** The active L1 table as stored (QEMU keeps it in memory; the COPIED repair edits it). */
  l1: Uint8Array;
  fix: FixMode;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Where messages go; undefined when none is wanted (then none is even built: `ctx.log?.(…)`). */
  log: ((message: string) => void) | undefined;
}

export async function openContext(file: BlockFile, meta: ImageMetadata, fix: FixMode, log: ((message: string) => void) | undefined): Promise<CheckContext> {
  const { layout } = meta;
  const g = layout.geometry;
  const fileSize = await checkedFileLength(file);
  const read = (offset: number, length: number) => readPadded(file, offset, length, ctx.fileSize);
  const tableBytes = await readPadded(file, layout.refcountTableOffset, layout.refcountTableClusters * g.clusterSize, fileSize);
  const store = new RefcountStore(
    file,
    read,
    g.clusterSize,
    g.refcountOrder,
    decodeRefcountTableRaw(tableBytes, tableBytes.byteLength / 8),
  );
  const max = maxRefcount(g.refcountOrder);
  const ctx: CheckContext = {
    file,
    meta,
    clusterSize: g.clusterSize,
    clusterBits: g.clusterBits,
    extendedL2: g.extendedL2,
    l2Entries: g.l2Entries,
    l2EntryBytes: g.l2EntryBytes,
    dataFile: layout.features.externalDataFile,
    refcountMax: max > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(max),
    fileSize,
    refcountTableOffset: layout.refcountTableOffset,
    refcountTableClusters: layout.refcountTableClusters,
    store,
    l1: await readPadded(file, layout.l1TableOffset, layout.l1Size * 8, fileSize),
    fix,
    read,
    log,
  };
  return ctx;
}

/**
 * A table offset for the check's messages: past 2^53 the layout's number may be inexact (such a
 * table lies past any file and reads as zeros), so the header's exact value is used.
 */
export function exactTableOffset(offset: number, stored: bigint): number | bigint {
  return Number.isSafeInteger(offset) ? offset : stored;
}

/** Whether the image carries a LUKS header whose clusters count as used. */
export function cryptoHeaderRange(meta: ImageMetadata): { offset: number; length: number } | undefined {
  const h = meta.cryptoHeader;
  if (!h || h.length === 0n) return undefined;
  if (meta.header.cryptMethod !== CRYPT_LUKS) return undefined;
  return { offset: Number(h.offset), length: Number(h.length) };
}

export function clustersOf(bytes: number, clusterSize: number): number {
  return Math.ceil(bytes / clusterSize);
}

/**
 * A pass of the check that counts references into the in-memory refcount table, and notes in
 * `state` when the refcount structure must be rebuilt (calculate.ts, refblocks.ts).
 */
export type CountingPass = (ctx: CheckContext, res: CheckCounts, imrt: InMemoryRefcounts, state: { rebuild: boolean }) => Promise<void>;
