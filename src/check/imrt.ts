/**
 * The in-memory refcount table (QEMU's "IMRT"): one counter per host cluster, counted from the
 * references. It starts sized by the file's cluster count and grows only where QEMU lets it: a
 * reference may run at most less than one cluster past the end of the file (the last cluster may be
 * partly written); anything further is counted as a corruption instead, so a hostile offset never
 * makes it grow. Repairs (refcount block relocation, rebuilding) grow it by the clusters they add.
 */
import { unsupported } from '../errors.js';
import { MAX_CHECK_COUNTERS } from '../limits.js';
import type { CheckCounts } from './result.js';

/** Counters saturate here; a 64-bit refcount field could count further, no real image does. */
const COUNTER_MAX = 0xffff_ffff;

export class InMemoryRefcounts {
  private counts: Uint32Array;
  /** Clusters covered (QEMU's nb_clusters): at least the file's clusters. */
  size: number;

  constructor(
    size: number,
    private readonly clusterSize: number,
    /** Largest refcount the image's refcount_bits can hold (a count stops there, as QEMU's). */
    private readonly refcountMax: number,
  ) {
    this.size = size;
    this.counts = new Uint32Array(Math.max(size, 1));
  }

  get(cluster: number): number {
    return cluster < this.size ? (this.counts[cluster] ?? 0) : 0;
  }

  set(cluster: number, value: number): void {
    this.grow(cluster + 1);
    this.counts[cluster] = value;
  }

  /** Makes room for `size` clusters (new ones count 0). */
  grow(size: number): void {
    if (size <= this.size) return;
    if (size > this.counts.length) {
      if (size > MAX_CHECK_COUNTERS) throw unsupported(`in-memory refcount table of ${size} clusters is too large`);
      const next = new Uint32Array(Math.max(size, Math.min(MAX_CHECK_COUNTERS, this.counts.length * 2)));
      next.set(this.counts);
      this.counts = next;
    }
    this.size = size;
  }

  clear(): void {
    this.counts.fill(0);
  }

  /**
   * Counts one reference to every cluster of [offset, offset + length) (a bigint offset: one past
   * 2^53, always past the end of the file). `fileLength` is the
   * current file size. Returns false (and counts a corruption) when the range runs a cluster or
   * more past the end of the file.
   */
  add(res: CheckCounts, log: ((m: string) => void) | undefined, offset: number | bigint, length: number, fileLength: number): boolean {
    if (length <= 0) return true;
    const C = this.clusterSize;
    if (typeof offset === 'bigint' || !Number.isSafeInteger(offset) || offset + length - fileLength >= C) {
      log?.(
        `ERROR: counting reference for region exceeding the end of the file by one cluster or more: ` +
          `offset 0x${offset.toString(16)} size 0x${length.toString(16)}`,
      );
      res.corruptions++;
      return false;
    }
    const first = Math.floor(offset / C);
    const last = Math.floor((offset + length - 1) / C);
    this.grow(last + 1);
    const max = Math.min(this.refcountMax, COUNTER_MAX);
    for (let k = first; k <= last; k++) {
      const n = this.counts[k] ?? 0;
      if (n >= max) {
        log?.(`ERROR: overflow cluster offset=0x${(k * C).toString(16)}`);
        res.corruptions++;
        continue;
      }
      this.counts[k] = n + 1;
    }
    return true;
  }

  /**
   * Finds `count` free clusters from `*firstFree` on (growing past the end when needed), marks them
   * used and returns the first one's index; `firstFree.value` moves to the first gap seen (QEMU's
   * alloc_clusters_imrt).
   */
  allocate(count: number, firstFree: { value: number }): number {
    let cluster = firstFree.value;
    let run = 0;
    let firstGap = true;
    for (; cluster < this.size && run < count; cluster++) {
      if (this.get(cluster) === 0) {
        run++;
        if (firstGap) {
          firstFree.value = cluster;
          firstGap = false;
        }
      } else {
        run = 0;
      }
    }
    if (run < count) this.grow(cluster + count - run);
    const start = cluster - run;
    for (let i = 0; i < count; i++) this.set(start + i, 1);
    return start;
  }
}
