/**
 * The loader of the ublk addon (native/ublk_*.c, built next to the main addon by
 * `node native/build.mjs` as native/build/Release/qcow2_ublk.node, on Linux only). It does the
 * system calls Node has none for: io_uring URING_CMDs on /dev/ublk-control, and the queue threads.
 */
import { createRequire } from 'node:module';

export interface QueuesHandle {
  readonly __ublkQueues: unique symbol;
}

/** Called on the JS thread: a batch of requests (ArrayBuffer of 24-byte entries), or null when the queue thread ended. */
export type QueueEvent = (queue: number, batch: ArrayBuffer | null, errno: number) => void;

export interface UblkAddon {
  /**
   * One control command (`op`: an ioctl-encoded UBLK_U_CMD_*) as an io_uring URING_CMD on
   * /dev/ublk-control, on a libuv worker thread. `buf` is the command's addr/len. Resolves with the
   * completion's result; rejects with an errno Error (code, errno, syscall): ENOENT when
   * /dev/ublk-control does not exist, ETIMEDOUT after `timeoutMs`, the driver's errno otherwise.
   */
  control(op: number, devId: number, queueId: number, buf: Uint8Array | null, data0: number, timeoutMs: number, name: string): Promise<number>;
  /**
   * Opens /dev/ublkcN, maps each queue's descriptors and per-tag buffers, and fetches every tag:
   * `inline` true, from the calling (JS) thread, which then owns the rings (watched on the event
   * loop; onEvent runs from there); false, one native thread per queue (onEvent through a
   * threadsafe function).
   */
  openQueues(
    devId: number,
    nrQueues: number,
    depth: number,
    maxIoBytes: number,
    onEvent: QueueEvent,
    inline?: boolean,
  ): { handle: QueuesHandle; buffers: ArrayBuffer[] };
  /** Completes request `tag` of `queue`: bytes done, or -errno. Ignored unless the tag is with JS. */
  complete(handle: QueuesHandle, queue: number, tag: number, result: number): void;
  /** complete() for `count` pairs [tag, result] of `pairs`. */
  completeMany(handle: QueuesHandle, queue: number, pairs: Int32Array, count: number): void;
  /** Makes the queue threads end now (their outstanding commands are cancelled). */
  stopQueues(handle: QueuesHandle): void;
  /** stopQueues, joins the threads, closes /dev/ublkcN. Idempotent. */
  closeQueues(handle: QueuesHandle): void;
  /** prctl(PR_SET_IO_FLUSHER) on the calling thread; false when refused. */
  setIoFlusher(): boolean;
}

const ADDON_PATH = '../../native/build/Release/qcow2_ublk.node';

let addon: UblkAddon | null | undefined;
let loadError = '';

/** The ublk addon, loaded once; null when it is not built (see ublkAddonError()). */
export function loadUblkAddon(): UblkAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as UblkAddon;
    } catch (err) {
      addon = null;
      loadError = (err as Error).message;
    }
  }
  return addon;
}

/** Why loadUblkAddon() returned null ('' when it did not). */
export function ublkAddonError(): string {
  loadUblkAddon();
  return loadError;
}
