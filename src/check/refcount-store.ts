/**
 * The image's own refcounts, as stored: the refcount table (held in memory) and refcount blocks
 * read through a small cache. A block past the end of the file reads as zeros, as QEMU's reads do;
 * a table entry with an unaligned offset cannot be used (`get` answers undefined, QEMU's -EIO).
 * Repairs change cached blocks; `flush` writes the changed ones back.
 */
import { view } from '../format/bytes.js';
import { REFCOUNT_TABLE_ENTRY_SIZE, readRefcountBig, writeRefcount } from '../format/refcount.js';
import type { BlockFile } from '../io/block-file.js';
import { CHECK_REFCOUNT_BLOCK_CACHE as CACHE_BLOCKS, MAX_DEVICE_LENGTH } from '../limits.js';

/** Bits 9-63 of a refcount table entry. */
const TWO_32 = 0x1_0000_0000;

export interface RefcountTableEntryRaw {
  /** Bits 9-63 as a number (exact below 2^53; larger ones lie past any file). */
  offset: number;
  /** Bits 32-63 of the offset, exact. */
  hi: number;
  /** Bits 9-31 of the offset, exact (`offset` is not above 2^53); alignment is judged on these. */
  low: number;
  /** Bits 0-8. */
  reserved: number;
}

/** Whether a refcount table entry's offset is cluster aligned (cluster sizes are below 2^32). */
export function refblockAligned(entry: RefcountTableEntryRaw, clusterSize: number): boolean {
  return entry.low % clusterSize === 0;
}

/**
 * Whether QEMU can use the refcount block an entry names: aligned, and a read of it accepted by
 * its block layer, which fails (EIO) any request reaching past BDRV_MAX_LENGTH, while one merely
 * past the end of the file reads zeros.
 */
export function refblockUsable(entry: RefcountTableEntryRaw, clusterSize: number): boolean {
  if (!refblockAligned(entry, clusterSize)) return false;
  if (entry.hi < 0x20_0000) return true; // below 2^53: far below the limit
  return BigInt(entry.hi) * BigInt(TWO_32) + BigInt(entry.low) + BigInt(clusterSize) <= MAX_DEVICE_LENGTH;
}

export function decodeRefcountTableRaw(bytes: Uint8Array, entries: number): RefcountTableEntryRaw[] {
  const dv = view(bytes);
  const out: RefcountTableEntryRaw[] = [];
  for (let i = 0; i < entries; i++) {
    const hi = dv.getUint32(i * REFCOUNT_TABLE_ENTRY_SIZE);
    const lo = dv.getUint32(i * REFCOUNT_TABLE_ENTRY_SIZE + 4);
    const low = (lo & 0xffff_fe00) >>> 0;
    out.push({ offset: hi * TWO_32 + low, hi, low, reserved: lo & 0x1ff });
  }
  return out;
}

export class RefcountStore {
  private readonly cache = new Map<number, { bytes: Uint8Array; dirty: boolean }>();

  constructor(
    private readonly file: BlockFile,
    private readonly read: (offset: number, length: number) => Promise<Uint8Array>,
    readonly clusterSize: number,
    readonly refcountOrder: number,
    public table: RefcountTableEntryRaw[],
  ) {}

  get blockEntries(): number {
    return (this.clusterSize * 8) / 2 ** this.refcountOrder;
  }

  /**
   * The block holding cluster `cluster`'s refcount: null when there is none (all zero), undefined
   * when the table entry is unusable (refblockUsable: QEMU's -EIO).
   */
  async blockFor(cluster: number): Promise<Uint8Array | null | undefined> {
    const entry = this.table[Math.floor(cluster / this.blockEntries)];
    if (entry === undefined || entry.offset === 0) return null;
    if (!refblockUsable(entry, this.clusterSize)) return undefined;
    return this.load(entry.offset);
  }

  /** The stored refcount of a cluster, or undefined when it cannot be read. */
  async get(cluster: number): Promise<number | undefined> {
    const block = await this.blockFor(cluster);
    if (block === undefined) return undefined;
    if (block === null) return 0;
    return Number(readRefcountBig(block, cluster % this.blockEntries, this.refcountOrder));
  }

  /** Refcount `index` of a block returned by `blockFor`. */
  valueIn(block: Uint8Array, index: number): number {
    return Number(readRefcountBig(block, index, this.refcountOrder));
  }

  /** Sets a stored refcount; false when the cluster has no usable block. */
  async set(cluster: number, value: number): Promise<boolean> {
    const entry = this.table[Math.floor(cluster / this.blockEntries)];
    if (entry === undefined || entry.offset === 0 || !refblockUsable(entry, this.clusterSize)) return false;
    const block = await this.load(entry.offset);
    writeRefcount(block, cluster % this.blockEntries, this.refcountOrder, BigInt(value));
    const cached = this.cache.get(entry.offset);
    if (cached) cached.dirty = true;
    return true;
  }

  async flush(): Promise<void> {
    for (const [offset, c] of this.cache) {
      if (!c.dirty) continue;
      await this.file.write(offset, c.bytes, 'refcount-block');
      c.dirty = false;
    }
  }

  /** Forgets every cached block (after flushing changed ones). */
  async reset(table: RefcountTableEntryRaw[]): Promise<void> {
    await this.flush();
    this.cache.clear();
    this.table = table;
  }

  private async load(offset: number): Promise<Uint8Array> {
    const hit = this.cache.get(offset);
    if (hit) {
      this.cache.delete(offset);
      this.cache.set(offset, hit);
      return hit.bytes;
    }
    if (this.cache.size >= CACHE_BLOCKS) {
      const [oldest, c] = this.cache.entries().next().value as [number, { bytes: Uint8Array; dirty: boolean }];
      if (c.dirty) await this.file.write(oldest, c.bytes, 'refcount-block');
      this.cache.delete(oldest);
    }
    const bytes = await this.read(offset, this.clusterSize);
    this.cache.set(offset, { bytes, dirty: false });
    return bytes;
  }
}
