/**
 * Locks on ranges of guest clusters. Shared holders (reads) overlap freely; an exclusive holder
 * (anything that changes guest data or metadata for those clusters) excludes every overlapping
 * holder. Requests are served in arrival order: a request waits for every earlier request it
 * conflicts with, so no request starves and there is no deadlock (waits only go backwards).
 */
interface Held {
  first: number;
  last: number;
  shared: boolean;
  done: Promise<void>;
}

export class RangeLock {
  private readonly active = new Set<Held>();

  /** Holds clusters [first, last] while `fn` runs. */
  async run<T>(first: number, last: number, shared: boolean, fn: () => Promise<T>): Promise<T> {
    const conflicts: Promise<void>[] = [];
    for (const h of this.active) {
      if (h.first <= last && first <= h.last && !(shared && h.shared)) conflicts.push(h.done);
    }
    let release!: () => void;
    const me: Held = { first, last, shared, done: new Promise<void>((r) => (release = r)) };
    this.active.add(me);
    try {
      await Promise.all(conflicts);
      return await fn();
    } finally {
      this.active.delete(me);
      release();
    }
  }

  /** The whole device, exclusively (snapshots, resize, flush, close). */
  runAll<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(0, Number.POSITIVE_INFINITY, false, fn);
  }
}
