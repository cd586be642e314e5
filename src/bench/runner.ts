/**
 * The request loop of `qemu-img bench` (qemu-img.c 7.2, bench_cb), ported state for state onto
 * promises: up to `depth` requests in flight against the engine, a new one submitted as each
 * completes, offsets from nextOffset(), and the same flush rule:
 *
 * - With a flush interval, when a request completes and the number of requests not yet submitted
 *   (`remaining`, counted before the completion) is a multiple of the interval, a flush is due.
 * - Draining (the default): submission stops until every request in flight has completed, then the
 *   flush runs alone, and submission resumes when it completes.
 * - `--no-drain`: the flush is issued alongside the requests in flight and submission goes on.
 *   Once every request has been submitted `remaining` stays 0, so (as in QEMU) each of the last
 *   completions issues a flush.
 *
 * The clock stops when the last request completes (QEMU's `while (data.n > 0)` loop); a flush
 * still in the air then is awaited before the result is returned, but not timed, as QEMU's
 * blk_unref drains it after the measurement.
 */
import { nextOffset } from './requests.js';

/** What the runner needs from an engine (a BlockDevice has all of it). */
export interface BenchTarget {
  readonly virtualSize: number;
  readInto(offset: number, target: Uint8Array): Promise<unknown>;
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

/**
 * How the engine's cache is driven, for the `-t` values that have an honest meaning over a
 * page-cache engine: 'writeback' passes requests and flushes as they are; 'writethrough' flushes
 * after every write, before the write counts as complete (QEMU emulates FUA that way); 'unsafe'
 * drops flushes (QEMU's cache.no-flush).
 */
export type BenchCache = 'writeback' | 'writethrough' | 'unsafe';

export interface BenchPlan {
  write: boolean;
  /** Requests to complete. */
  count: number;
  /** Requests in flight at most (at least 1). */
  depth: number;
  /** Bytes per request. */
  bufferSize: number;
  /** Distance between the offsets of consecutive requests. */
  step: number;
  /** Offset of the first request. */
  offset: number;
  /** Byte written by write requests. */
  pattern: number;
  /** Flush every this many requests; 0 for never. */
  flushInterval: number;
  drainOnFlush: boolean;
  cache: BenchCache;
}

export interface BenchResult {
  /** Wall-clock time from the first submission to the last request's completion. */
  seconds: number;
  requests: number;
  /** Flushes issued by the flush interval (including ones after the clock stopped). */
  flushes: number;
}

/** Milliseconds, monotonic. */
export type Clock = () => number;

const defaultClock: Clock = () => performance.now();

export function runBench(target: BenchTarget, plan: BenchPlan, clock: Clock = defaultClock): Promise<BenchResult> {
  if (!Number.isInteger(plan.depth) || plan.depth < 1) throw new RangeError(`bench: depth must be at least 1, not ${plan.depth}`);
  if (plan.count > 0 && !(target.virtualSize > 0)) throw new RangeError('bench: the image is empty');
  return new Promise<BenchResult>((resolve, reject) => {
    const imageSize = target.virtualSize;
    // One buffer per slot, as QEMU's data.buf holds depth buffers, all filled with the pattern.
    const slots = Math.max(0, Math.min(plan.depth, plan.count));
    const buffers = Array.from({ length: slots }, () => new Uint8Array(plan.bufferSize).fill(plan.pattern));
    const freeSlots = buffers.map((_, i) => slots - 1 - i);

    // QEMU's BenchData.
    let n = plan.count;
    let inFlight = 0;
    let offset = plan.offset;
    // Ours: everything still in the air (requests and flushes), for a clean finish or failure.
    let outstanding = 0;
    let flushes = 0;
    let failure: { error: unknown } | undefined;
    let endedAt: number | undefined;
    const startedAt = clock();

    const settle = (): void => {
      if (outstanding > 0) return;
      if (failure) reject(failure.error);
      else if (endedAt !== undefined) resolve({ seconds: (endedAt - startedAt) / 1000, requests: plan.count, flushes });
    };
    const fail = (error: unknown): void => {
      failure ??= { error };
    };
    const flush = (): Promise<void> => (plan.cache === 'unsafe' ? Promise.resolve() : target.flush());

    const issueFlush = (drained: boolean): void => {
      flushes++;
      outstanding++;
      flush().then(
        () => {
          outstanding--;
          if (drained && !failure) step('flush');
          settle();
        },
        (error: unknown) => {
          outstanding--;
          fail(error);
          settle();
        },
      );
    };

    const submit = (requestOffset: number): void => {
      const slot = freeSlots.pop() ?? 0;
      outstanding++;
      let request: Promise<unknown>;
      try {
        if (!plan.write) {
          request = target.readInto(requestOffset, buffers[slot] as Uint8Array);
        } else {
          const data = buffers[slot] as Uint8Array;
          request = target.write(requestOffset, data);
          if (plan.cache === 'writethrough') request = request.then(() => target.flush());
        }
      } catch (error) {
        request = Promise.reject(error);
      }
      request.then(
        () => {
          outstanding--;
          freeSlots.push(slot);
          if (!failure) step('request');
          settle();
        },
        (error: unknown) => {
          outstanding--;
          freeSlots.push(slot);
          fail(error);
          settle();
        },
      );
    };

    // bench_cb, for the initial call ('start'), a completed request, or a completed drained flush.
    const step = (event: 'start' | 'request' | 'flush'): void => {
      // A completed drained flush (QEMU's in_flush) only resumes submission.
      if (event === 'request') {
        const remaining = n - inFlight;
        n--;
        inFlight--;
        if (plan.flushInterval > 0 && remaining % plan.flushInterval === 0) {
          if (inFlight === 0 || !plan.drainOnFlush) {
            issueFlush(plan.drainOnFlush);
          }
          if (plan.drainOnFlush) {
            if (n === 0) endedAt ??= clock();
            return;
          }
        }
      }
      while (n > inFlight && inFlight < plan.depth) {
        const requestOffset = offset;
        inFlight++;
        offset = nextOffset(offset, plan.step, imageSize);
        submit(requestOffset);
      }
      if (n === 0) endedAt ??= clock();
    };

    step('start');
    settle();
  });
}
