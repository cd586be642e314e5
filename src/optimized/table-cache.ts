/**
 * One generic cache of cluster-sized metadata tables (used twice: L2 tables and refcount blocks),
 * least recently used first out, bounded by a byte budget.
 *
 * Clean tables may be evicted by anyone (a read that loads a table evicts clean ones only). Dirty
 * tables are written back only by `trim` and `flushDirty`, which the engine calls while holding its
 * metadata mutex; before writing, a cache flushes the cache it depends on (see flush-order.ts, which
 * sets those dependencies: the one place that decides write order). The budget may be exceeded
 * briefly while dirty tables wait for the next `trim`.
 */
import type { BlockFile, WriteTag } from '../io/block-file.js';

interface Entry {
  bytes: Uint8Array;
  dirty: boolean;
  /** Bumped on every change, so a write-back knows whether the table changed meanwhile. */
  version: number;
}

export class TableCache {
  private readonly entries = new Map<number, Entry>();
  private readonly loading = new Map<number, Promise<Uint8Array>>();
  readonly capacity: number;
  /** This cache's dirty tables may be written only after the other cache's are (flush-order.ts). */
  dependsOn: TableCache | undefined;
  /** Counts, for tests and benchmarks. */
  readonly stats = { hits: 0, misses: 0, writes: 0 };

  constructor(
    readonly name: string,
    private readonly file: BlockFile,
    readonly tableBytes: number,
    budgetBytes: number,
    private readonly tag: WriteTag,
  ) {
    this.capacity = Math.max(2, Math.floor(budgetBytes / tableBytes));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The table at `offset`; the caller must decode or change it before its next await. */
  async get(offset: number): Promise<Uint8Array> {
    const hit = this.entries.get(offset);
    if (hit) {
      this.stats.hits++;
      this.entries.delete(offset);
      this.entries.set(offset, hit);
      return hit.bytes;
    }
    const pending = this.loading.get(offset);
    if (pending) return pending;
    this.stats.misses++;
    const load = (async () => {
      const got = await this.file.read(offset, this.tableBytes);
      const bytes = new Uint8Array(this.tableBytes); // past the end of the file reads as zeros
      bytes.set(got);
      const raced = this.entries.get(offset);
      if (raced) return raced.bytes;
      this.entries.set(offset, { bytes, dirty: false, version: 0 });
      this.evictClean();
      return bytes;
    })();
    this.loading.set(offset, load);
    try {
      return await load;
    } finally {
      this.loading.delete(offset);
    }
  }

  /** Records that `bytes` (the table at `offset`, as returned by get or put) has changed. */
  markDirty(offset: number, bytes: Uint8Array): void {
    const e = this.entries.get(offset);
    if (e) {
      e.bytes = bytes; // a clean copy reloaded meanwhile holds the same data minus this change
      e.dirty = true;
      e.version++;
    } else {
      this.entries.set(offset, { bytes, dirty: true, version: 1 });
    }
  }

  /** Adds a table already on disk (just written through). */
  putClean(offset: number, bytes: Uint8Array): void {
    this.entries.delete(offset);
    this.entries.set(offset, { bytes, dirty: false, version: 0 });
    this.evictClean();
  }

  /** Forgets a table (its cluster was freed); its pending changes are dropped. */
  forget(offset: number): void {
    this.entries.delete(offset);
  }

  /** Forgets every table; dirty ones must have been flushed. */
  clear(): void {
    this.entries.clear();
  }

  hasDirty(): boolean {
    for (const e of this.entries.values()) if (e.dirty) return true;
    return false;
  }

  /** Writes dirty tables back (their dependencies first) until the cache is within budget. */
  async trim(): Promise<void> {
    while (this.entries.size > this.capacity) {
      let victim: [number, Entry] | undefined;
      for (const pair of this.entries) {
        victim = pair;
        break;
      }
      if (!victim) return;
      const [offset, e] = victim;
      if (e.dirty) await this.writeBack(offset, e);
      if (!e.dirty && this.entries.get(offset) === e) this.entries.delete(offset);
      else if (this.entries.get(offset) === e) {
        // Changed during its write-back: move it to the young end and go on.
        this.entries.delete(offset);
        this.entries.set(offset, e);
      }
    }
  }

  /** Writes every dirty table back, after the tables this cache depends on. */
  async flushDirty(): Promise<void> {
    for (const [offset, e] of [...this.entries]) if (e.dirty) await this.writeBack(offset, e);
  }

  private async writeBack(offset: number, e: Entry): Promise<void> {
    if (this.dependsOn) {
      const dep = this.dependsOn;
      await dep.flushDirty();
      await this.file.flush();
      if (this.dependsOn === dep) this.dependsOn = undefined;
    }
    const version = e.version;
    this.stats.writes++;
    await this.file.write(offset, e.bytes.slice(), this.tag);
    if (e.version === version) e.dirty = false;
  }

  private evictClean(): void {
    if (this.entries.size <= this.capacity) return;
    for (const [offset, e] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      if (!e.dirty) this.entries.delete(offset);
    }
  }
}
