/**
 * One generic cache of cluster-sized metadata tables (used twice: L2 tables and refcount blocks),
 * least recently used first out, bounded by a byte budget. Tables are cached in slices (QEMU's
 * l2-cache-entry-size): a slice is loaded, kept, written back and evicted on its own, so a budget
 * smaller than one table still works, and a random read brings in a few KiB, not a whole 2 MiB
 * table. A slice is named by its offset in the file.
 *
 * Callers never hold a slice's bytes: they run a synchronous function on them (use, useSlice).
 * Clean tables may be evicted by anyone (a read that loads a table evicts clean ones only). Dirty
 * tables are written back only by `trim` and `flushDirty`, which the engine calls while holding its
 * metadata mutex; before writing, a cache flushes the cache it depends on (see flush-order.ts, which
 * sets those dependencies: the one place that decides write order). The budget may be exceeded
 * briefly while dirty tables wait for the next `trim`.
 */
import type { BlockFile, WriteTag } from '../io/block-file.js';

/** Slice size unless told otherwise: a page, as QEMU recommends for l2-cache-entry-size. */
export const DEFAULT_SLICE_BYTES = 4096;
/** Evicted slice buffers kept for reuse, at most. */
const SPARES = 16;

interface Entry {
  bytes: Uint8Array;
  dirty: boolean;
  /** Bumped on every change, so a write-back knows whether the table changed meanwhile. */
  version: number;
}

export class TableCache {
  private readonly entries = new Map<number, Entry>();
  private readonly loading = new Map<number, Promise<void>>();
  readonly capacity: number;
  /** This cache's dirty tables may be written only after the other cache's are (flush-order.ts). */
  dependsOn: TableCache | undefined;
  /** Makes what was written before durable (set by flush-order.ts; a plain flush by default). */
  barrier: () => Promise<void>;
  /** When set, runs before every write-back (L2 tables: after the data they point to). */
  beforeWriteBack: (() => Promise<void>) | undefined;
  /** Counts, for tests and benchmarks. */
  readonly stats = { hits: 0, misses: 0, writes: 0 };
  /**
   * Buffers of evicted slices, reused for later loads, so that a stream of misses does not turn
   * into a stream of garbage (which grows the runtime's heap and malloc arenas far beyond the
   * budget: 40,000 random reads over a 1 TiB image took the resident set 80 MiB higher).
   */
  private readonly spares: Uint8Array[] = [];
  /** Bytes per slice (a power of two, at most a table). */
  readonly sliceBytes: number;

  constructor(
    readonly name: string,
    private readonly file: BlockFile,
    readonly tableBytes: number,
    budgetBytes: number,
    private readonly tag: WriteTag,
    sliceBytes = Math.min(tableBytes, DEFAULT_SLICE_BYTES),
  ) {
    if (!(sliceBytes > 0 && sliceBytes <= tableBytes && tableBytes % sliceBytes === 0)) {
      throw new RangeError(`${name} cache: slice of ${sliceBytes} bytes does not divide a ${tableBytes}-byte table`);
    }
    this.sliceBytes = sliceBytes;
    this.barrier = () => file.flush();
    this.capacity = Math.max(2, Math.floor(budgetBytes / sliceBytes));
  }

  /**
   * Runs `fn` on the slice holding byte `byteInTable` of the table at `tableOffset`, with that
   * byte's place in it and the slice's name (`key`, for markDirty). The bytes are lent to `fn`
   * only: it must not keep them (the buffer is reused once the slice is evicted).
   */
  useSlice<T>(tableOffset: number, byteInTable: number, fn: (bytes: Uint8Array, at: number, key: number) => T): Promise<T> {
    const within = byteInTable % this.sliceBytes;
    const key = tableOffset + byteInTable - within;
    return this.use(key, (bytes) => fn(bytes, within, key));
  }

  /** A whole table, assembled from its slices (a copy). */
  async readTable(tableOffset: number): Promise<Uint8Array> {
    const out = new Uint8Array(this.tableBytes);
    for (let at = 0; at < this.tableBytes; at += this.sliceBytes) await this.use(tableOffset + at, (b) => out.set(b, at));
    return out;
  }

  /** Adds a table already on disk (just written through), slice by slice. */
  putCleanTable(tableOffset: number, table: Uint8Array): void {
    for (let at = 0; at < this.tableBytes; at += this.sliceBytes) this.putClean(tableOffset + at, table.slice(at, at + this.sliceBytes));
  }

  /** Forgets every slice of a table (its cluster was freed); pending changes are dropped. */
  forgetTable(tableOffset: number): void {
    for (let at = 0; at < this.tableBytes; at += this.sliceBytes) this.drop(tableOffset + at);
  }

  /** Removes a slice, keeping its buffer for reuse (no one holds it: see use()). */
  private drop(offset: number): void {
    const e = this.entries.get(offset);
    if (!e) return;
    this.entries.delete(offset);
    if (e.bytes.byteLength === this.sliceBytes && this.spares.length < SPARES) this.spares.push(e.bytes);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `fn` on the slice at `offset`, loading it first if needed. `fn` runs synchronously on
   * the cached bytes and must not keep them: once evicted, a slice's buffer is reused.
   */
  async use<T>(offset: number, fn: (bytes: Uint8Array) => T): Promise<T> {
    let first = true;
    for (;;) {
      // Looked up again after every load: another request's load may have evicted it meanwhile.
      const hit = this.entries.get(offset);
      if (hit) {
        if (first) this.stats.hits++;
        this.entries.delete(offset);
        this.entries.set(offset, hit);
        return fn(hit.bytes);
      }
      first = false;
      await this.load(offset);
    }
  }

  private load(offset: number): Promise<void> {
    const pending = this.loading.get(offset);
    if (pending) return pending;
    this.stats.misses++;
    const load = (async () => {
      const bytes = this.spares.pop() ?? new Uint8Array(this.sliceBytes);
      const got = await this.file.readInto(offset, bytes);
      if (got < bytes.byteLength) bytes.fill(0, got); // past the end of the file reads as zeros
      if (this.entries.has(offset)) return; // put meanwhile (a fresh table): that copy is newer
      this.entries.set(offset, { bytes, dirty: false, version: 0 });
      // Never the slice just loaded: when every other slice is dirty, evicting it would send its
      // user back to load it again, for ever (found by the crash workloads with tiny caches).
      this.evictClean(offset);
    })().finally(() => this.loading.delete(offset));
    this.loading.set(offset, load);
    return load;
  }

  /** Records that `bytes` (the slice at `offset`, as lent by use) has changed; call it inside use. */
  markDirty(offset: number, bytes: Uint8Array): void {
    const e = this.entries.get(offset);
    if (e) {
      e.bytes = bytes;
      e.dirty = true;
      e.version++;
    } else {
      this.entries.set(offset, { bytes, dirty: true, version: 1 });
    }
  }

  /** Adds a slice already on disk. */
  private putClean(offset: number, bytes: Uint8Array): void {
    this.entries.delete(offset);
    this.entries.set(offset, { bytes, dirty: false, version: 0 });
    this.evictClean(offset);
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
      if (!e.dirty && this.entries.get(offset) === e) this.drop(offset);
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
      await this.barrier();
      if (this.dependsOn === dep) this.dependsOn = undefined;
    }
    await this.beforeWriteBack?.();
    const version = e.version;
    this.stats.writes++;
    await this.file.write(offset, e.bytes.slice(), this.tag);
    if (e.version === version) e.dirty = false;
  }

  /** Drops clean slices, least recently used first, until within budget; `keep` stays. */
  private evictClean(keep: number): void {
    if (this.entries.size <= this.capacity) return;
    for (const [offset, e] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      if (!e.dirty && offset !== keep) this.drop(offset);
    }
  }
}
