/**
 * Graceful shutdown, the same for every server: stop accepting clients, let the requests in
 * flight finish (their replies are sent), flush, and close the image clean (a qcow2 image's dirty
 * bit cleared). Also the count of requests in flight that servers drain, and the SIGTERM/SIGINT
 * hook that starts a shutdown.
 */
import type { BlockDevice } from '../engine/types.js';

/** Counts work in flight; drained() resolves when none is left. */
export class InFlight {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Counts `work` until it settles (whatever its outcome), and returns it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.count++;
    const done = () => {
      this.count--;
      if (this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
    work.then(done, done);
    return work;
  }

  drained(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** What a server does in a shutdown. */
export interface Drainable {
  /** Takes no new clients (a listening socket is closed). */
  stopAccepting(): void | Promise<void>;
  /** Reads no new requests, finishes those in flight and sends their replies, then disconnects. */
  drain(): Promise<void>;
}

/**
 * Stops `server`, then flushes and closes `device`. Each step runs even when an earlier one
 * failed; the first failure is thrown at the end.
 */
export async function shutdownGracefully(server: Drainable, device: BlockDevice): Promise<void> {
  let failure: unknown;
  const step = async (fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      failure ??= err;
    }
  };
  await step(() => server.stopAccepting());
  await step(() => server.drain());
  if (!device.readOnly) await step(() => device.flush());
  await step(() => device.close());
  if (failure !== undefined) throw failure;
}

/**
 * Calls `onSignal` on the first SIGTERM or SIGINT (later ones are reported through `again` and
 * otherwise ignored: the shutdown under way finishes). Returns the function that removes the hooks.
 */
export function onTerminationSignals(onSignal: (signal: NodeJS.Signals) => void, again: (signal: NodeJS.Signals) => void = () => {}): () => void {
  let fired = false;
  const handler = (signal: NodeJS.Signals) => {
    if (fired) {
      again(signal);
      return;
    }
    fired = true;
    onSignal(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/** The first SIGTERM/SIGINT, as a promise a server races against its own end; later ones go to `again`. */
export interface TerminationWatch {
  /** Resolves with the first signal. */
  readonly signalled: Promise<NodeJS.Signals>;
  /** The first signal, once it came. */
  signal(): NodeJS.Signals | undefined;
  /** Stops listening. */
  remove(): void;
}

export function watchTermination(again: (signal: NodeJS.Signals) => void): TerminationWatch {
  let first: NodeJS.Signals | undefined;
  let remove = () => {};
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    remove = onTerminationSignals((signal) => {
      first = signal;
      resolve(signal);
    }, again);
  });
  return { signalled, signal: () => first, remove };
}
