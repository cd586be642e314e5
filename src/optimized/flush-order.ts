/**
 * All write ordering of the optimized engine, in one place.
 *
 *  0. "Before" means durable before: ordered writes are separated by a flush (a barrier, which
 *     flushes only when some other write completed since the last flush), because a disk may
 *     persist the writes between two flushes in any order.
 *  1. Guest data is written (awaited) before the L2 entry that points to it is changed in the
 *     cache, and every L2 write-back waits for a barrier (copy-on-write data and everything else
 *     written before it lands first; QEMU's depends_on_flush).
 *  2. Refcount increments for clusters a new L2 entry will point at: the L2 cache then depends on
 *     the refcount cache (refcount blocks reach the disk first).
 *  3. Refcount decrements after a reference was dropped: the refcount cache then depends on the L2
 *     cache (the L2 tables without the reference reach the disk first). When a dependency would
 *     point the other way than an existing one, the existing one is flushed first (as QEMU's
 *     qcow2_cache_set_dependency), so there is never a cycle.
 *  4. Writes that change the L1 table, the refcount table, the snapshot table or the header write
 *     through: both caches are flushed, a barrier, the write, a barrier (nothing issued later may
 *     land before it).
 *  5. New L2 tables and new refcount blocks are written through when created, before the L1 or
 *     refcount table entry that points at them.
 */
import type { BarrierFile } from '../io/barrier-file.js';
import type { WriteTag } from '../io/block-file.js';
import type { TableCache } from './table-cache.js';

export class FlushOrder {
  constructor(
    private readonly file: BarrierFile,
    private readonly dataFile: BarrierFile | undefined,
    private readonly l2: TableCache,
    private readonly refcounts: TableCache,
  ) {
    l2.barrier = () => this.barrier('l2');
    l2.beforeWriteBack = l2.barrier;
    refcounts.barrier = () => this.barrier('refcount-block');
  }

  /** Everything written so far (but writes tagged `except`) is made durable. */
  async barrier(except?: WriteTag): Promise<void> {
    await this.dataFile?.barrier(except);
    await this.file.barrier(except);
  }

  /** Rule 2: L2 tables changed from now on reach the disk after the refcount blocks. */
  async afterIncrement(): Promise<void> {
    await this.depend(this.l2, this.refcounts);
  }

  /** Rule 3: refcount blocks changed from now on reach the disk after the L2 tables. */
  async afterDecrement(): Promise<void> {
    await this.depend(this.refcounts, this.l2);
  }

  private async depend(cache: TableCache, on: TableCache): Promise<void> {
    if (cache.dependsOn === on) return;
    if (on.dependsOn === cache) {
      // The opposite order is pending: settle it before reversing.
      await cache.flushDirty();
      await this.barrier();
      on.dependsOn = undefined;
    }
    cache.dependsOn = on;
  }

  /** Both caches to disk, in dependency order. */
  async flushCaches(): Promise<void> {
    if (this.l2.dependsOn) {
      await this.refcounts.flushDirty();
      await this.l2.flushDirty();
    } else {
      await this.l2.flushDirty();
      await this.refcounts.flushDirty();
    }
    this.l2.dependsOn = undefined;
    this.refcounts.dependsOn = undefined;
  }

  /** Rule 4/5: a write-through of L1, refcount table, new tables or the header. */
  async writeThrough(offset: number, bytes: Uint8Array, tag: WriteTag): Promise<void> {
    await this.flushCaches();
    await this.barrier();
    await this.file.write(offset, bytes, tag);
    await this.barrier();
  }

  /** Keeps both caches within their budgets (dirty tables written back in order). */
  async trim(): Promise<void> {
    await this.refcounts.trim();
    await this.l2.trim();
  }
}
