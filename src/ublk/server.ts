/**
 * The ublk server: a BlockDevice served as /dev/ublkbN.
 *
 * The kernel side (ADD_DEV, SET_PARAMS, START_DEV, STOP_DEV, DEL_DEV, recovery) goes through
 * ./control.ts; the requests come from the addon's queues (native/ublk_queue.c: one io_uring per
 * hardware queue, owned by the JS thread and watched on the event loop) in batches, run through the shared request core
 * (execute() of src/serve/request.ts, which never throws and maps engine errors to errnos, each
 * distinct one logged once), and are completed with the byte count or -errno.
 *
 * | ublk request          | request core                         | completed with             |
 * | --------------------- | ------------------------------------ | -------------------------- |
 * | READ                  | read (data copied to the tag buffer) | bytes, or -errno           |
 * | WRITE (FUA)           | write (fua) from the tag buffer      | bytes, or -errno           |
 * | FLUSH                 | flush                                | 0, or -errno               |
 * | DISCARD               | trim (the policy: unmap or ignore)   | 0, or -errno               |
 * | WRITE_ZEROES (NOUNMAP)| write-zeroes (noHole = NOUNMAP)      | 0, or -errno               |
 * | anything else         |                                      | -EOPNOTSUPP                |
 *
 * Device parameters: 512-byte logical blocks, 4 KiB physical; the preferred I/O size is the
 * cluster size; a volatile write cache with FUA (so that FLUSH and FUA reach the engine);
 * read-only when the device is; discard (granularity: one cluster) when the policy unmaps and the
 * device can free space; write zeroes whenever writable.
 *
 * Stopping (stop()): STOP_DEV (the kernel removes the disk, waiting for the requests in flight,
 * which keep being served), then every fetch is aborted and the queues end, the requests
 * still in flight finish, and /dev/ublkcN is closed; delete() then sends DEL_DEV. The caller flushes
 * and closes the device in between (shutdownGracefully of src/serve/shutdown.ts does both).
 */
import { constants as osConstants } from 'node:os';
import { type BlockDevice, isQcow2 } from '../engine/types.js';
import { type Errno, ioError, isQcow2Error, unsupported } from '../errors.js';
import { type ErrorLog } from '../serve/log.js';
import { execute, type ServePolicy, type ServeRequest } from '../serve/request.js';
import { type Drainable, InFlight } from '../serve/shutdown.js';
import * as control from './control.js';
import type { QueuesHandle, UblkAddon } from './native.js';
import { ANY_DEV, ATTR, type DevInfo, F, IO_F, MAX_QUEUE_DEPTH, OP, type Params, STATE, stateName } from './uapi.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest read or write one request carries (max_io_buf_bytes, and the per-tag buffer): 512 KiB, as ublksrv's default. */
export const UBLK_DEFAULT_MAX_IO_BYTES = 512 * KiB;
/** Tags per queue unless told (the kernel allows 1..4096). */
export const UBLK_DEFAULT_DEPTH = 128;
/** The largest discard or write-zeroes request the kernel sends: 64 MiB (no buffer involved; bounds one engine call). */
export const UBLK_MAX_DISCARD_BYTES = 64 * MiB;
/** How long the queue threads may take to end after STOP_DEV and the last request before they are made to. */
const QUEUE_END_GRACE_MS = 5_000;

export interface UblkServerOptions {
  device: BlockDevice;
  /** ANY_DEV (default): the kernel picks the id. */
  devId?: number;
  queues?: number;
  depth?: number;
  maxIoBytes?: number;
  policy: ServePolicy;
  /** Engine errors, each distinct one reported once. */
  errors: ErrorLog;
  /** Server events (-v). */
  events?: (line: string) => void;
  /** Ask for USER_RECOVERY(+REISSUE): a crashed server leaves the device quiesced for `recover`. */
  recoverable?: boolean;
}

/** The parameters the device is announced with (pure: tested without a kernel). */
export function deviceParams(device: BlockDevice, maxIoBytes: number, policy: ServePolicy): Params {
  const clusterBytes = isQcow2(device) ? device.clusterSize : 4096;
  const clusterShift = Math.min(Math.max(Math.round(Math.log2(clusterBytes)), 12), 21);
  let attrs = ATTR.VOLATILE_CACHE | ATTR.FUA;
  if (device.readOnly) attrs |= ATTR.READ_ONLY;
  const params: Params = {
    basic: {
      attrs,
      logicalBsShift: 9,
      physicalBsShift: 12,
      ioOptShift: clusterShift,
      ioMinShift: 12,
      maxSectors: Math.floor(maxIoBytes / 512),
      chunkSectors: 0,
      devSectors: BigInt(Math.floor(device.virtualSize / 512)),
      virtBoundaryMask: 0n,
    },
  };
  if (!device.readOnly) {
    const discard = policy.discard === 'unmap' && device.capabilities.discard;
    params.discard = {
      discardAlignment: 0,
      discardGranularity: 2 ** clusterShift,
      maxDiscardSectors: discard ? UBLK_MAX_DISCARD_BYTES / 512 : 0,
      maxWriteZeroesSectors: UBLK_MAX_DISCARD_BYTES / 512,
      maxDiscardSegments: 1,
    };
  }
  return params;
}

function errnoNumber(errno: Errno | string): number {
  const n = (osConstants.errno as Record<string, number | undefined>)[errno];
  return n ?? osConstants.errno.EIO;
}

/**
 * Who owns the queues' rings: the JS thread (default: no thread hop per request, see
 * native/ublk_queue.c) or, with QCOW2_UBLK_QUEUE_THREADS=1, one native thread per queue (the
 * older design, kept for comparison).
 */
function queueThreads(): boolean {
  return process.env.QCOW2_UBLK_QUEUE_THREADS === '1';
}

const EIO = osConstants.errno.EIO;
const EOPNOTSUPP = osConstants.errno.EOPNOTSUPP;

export class UblkServer implements Drainable {
  readonly devId: number;
  readonly info: DevInfo;
  private readonly inFlight = new InFlight();
  private readonly buffers: Uint8Array[];
  private readonly handle: QueuesHandle;
  private queuesLeft: number;
  private queueErrors: number[] = [];
  private resolveEnded!: () => void;
  /** Resolves when every queue thread has ended (after STOP_DEV, or when the device went away). */
  readonly ended: Promise<void>;
  private stopping = false;
  private closed = false;
  private readonly completions: Int32Array[];
  private readonly completionCounts: number[];
  private flushScheduled = false;
  readonly requests = { total: 0, failed: 0 };

  private constructor(
    private readonly addon: UblkAddon,
    private readonly opts: UblkServerOptions,
    info: DevInfo,
  ) {
    this.devId = info.devId;
    this.info = info;
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.queuesLeft = info.nrHwQueues;
    this.completions = Array.from({ length: info.nrHwQueues }, () => new Int32Array(info.queueDepth * 2));
    this.completionCounts = new Array<number>(info.nrHwQueues).fill(0);
    const opened = addon.openQueues(info.devId, info.nrHwQueues, info.queueDepth, info.maxIoBufBytes, (q, batch, errno) => this.onEvent(q, batch, errno), !queueThreads());
    this.handle = opened.handle;
    this.buffers = opened.buffers.map((ab) => new Uint8Array(ab));
  }

  get blockPath(): string {
    return `/dev/ublkb${this.devId}`;
  }

  get charPath(): string {
    return `/dev/ublkc${this.devId}`;
  }

  /** Adds a device for `opts.device`, starts its queues and the disk: /dev/ublkbN is live when this resolves. */
  static async start(opts: UblkServerOptions): Promise<UblkServer> {
    const addon = await control.ublkControl();
    const depth = opts.depth ?? UBLK_DEFAULT_DEPTH;
    const maxIo = opts.maxIoBytes ?? UBLK_DEFAULT_MAX_IO_BYTES;
    if (!Number.isInteger(depth) || depth < 1 || depth > MAX_QUEUE_DEPTH) throw unsupported(`ublk: queue depth ${depth} is not 1..${MAX_QUEUE_DEPTH}`);
    let flags = F.CMD_IOCTL_ENCODE;
    if (opts.recoverable) {
      const features = await control.getFeatures();
      if ((features & F.USER_RECOVERY) === 0n) throw unsupported('ublk: this kernel has no user recovery (UBLK_F_USER_RECOVERY)');
      flags |= F.USER_RECOVERY;
      if (features & F.USER_RECOVERY_REISSUE) flags |= F.USER_RECOVERY_REISSUE;
    }
    const info = await control.addDev({ devId: opts.devId ?? ANY_DEV, nrHwQueues: opts.queues ?? 1, queueDepth: depth, maxIoBufBytes: maxIo, flags });
    let server: UblkServer | undefined;
    try {
      await control.setParams(info.devId, deviceParams(opts.device, info.maxIoBufBytes, opts.policy));
      addon.setIoFlusher();
      server = new UblkServer(addon, opts, info);
      await control.startDev(info.devId, process.pid);
      opts.events?.(`ublk device ${info.devId}: ${info.nrHwQueues} queue(s) of ${info.queueDepth} tags, requests up to ${info.maxIoBufBytes} bytes, live as /dev/ublkb${info.devId}`);
      return server;
    } catch (err) {
      if (server) await server.abandon();
      await control.delDev(info.devId).catch(() => {});
      throw err;
    }
  }

  /**
   * Takes over a quiesced device whose server died (one added with `recoverable`): START_USER_RECOVERY,
   * fresh queues, END_USER_RECOVERY. The kernel kept the parameters; `opts.device` must be the same image.
   */
  static async recover(devId: number, opts: UblkServerOptions): Promise<UblkServer> {
    const addon = await control.ublkControl();
    const before = await control.getDevInfo(devId);
    if ((before.flags & F.USER_RECOVERY) === 0n) throw unsupported(`ublk: device ${devId} was not added with user recovery (qcow2 ublk add --recoverable)`);
    if (before.state !== STATE.QUIESCED) throw unsupported(`ublk: device ${devId} is ${stateName(before.state)}, not quiesced: nothing to recover`);
    const size = BigInt(Math.floor(opts.device.virtualSize / 512));
    const params = await control.getParams(devId);
    if (params.basic && params.basic.devSectors !== size) {
      throw unsupported(`ublk: device ${devId} has ${params.basic.devSectors} sectors, the image ${size}: not the same image`);
    }
    await control.startUserRecovery(devId);
    const info = await control.getDevInfo(devId);
    addon.setIoFlusher();
    const server = new UblkServer(addon, opts, info);
    try {
      await control.endUserRecovery(devId, process.pid);
    } catch (err) {
      await server.abandon();
      throw err;
    }
    opts.events?.(`ublk device ${devId}: recovered, live again as /dev/ublkb${devId}`);
    return server;
  }

  /** Requests of all queues completed since the start, and how many failed. */
  private onEvent(q: number, batch: ArrayBuffer | null, errno: number): void {
    if (this.closed) return;
    if (batch === null) {
      if (errno !== 0) this.queueErrors.push(errno);
      if (errno !== 0) this.opts.errors.report(ioError(`ublk queue ${q} of device ${this.devId} ended: errno ${errno}`), `queue ${q}`);
      if (--this.queuesLeft === 0) this.resolveEnded();
      return;
    }
    const words = new Uint32Array(batch);
    const numbers = new Float64Array(batch);
    const n = batch.byteLength / 24;
    for (let i = 0; i < n; i++) {
      const tag = words[i * 6] as number;
      const opFlags = words[i * 6 + 1] as number;
      const sectors = words[i * 6 + 2] as number;
      const start = numbers[i * 3 + 2] as number;
      this.inFlight.track(this.serve(q, tag, opFlags, sectors, start));
    }
  }

  private async serve(q: number, tag: number, opFlags: number, sectors: number, startSector: number): Promise<void> {
    let result: number;
    try {
      result = await this.run(q, tag, opFlags, sectors, startSector);
    } catch (err) {
      // execute() never throws; this is a bug of ours, and still only fails the request.
      this.opts.errors.report(err, `ublk request op ${opFlags & 0xff}`);
      result = -EIO;
    }
    this.requests.total++;
    if (result < 0) this.requests.failed++;
    this.complete(q, tag, result);
  }

  private async run(q: number, tag: number, opFlags: number, sectors: number, startSector: number): Promise<number> {
    const op = opFlags & 0xff;
    const fua = (opFlags & IO_F.FUA) !== 0;
    const offset = startSector * 512;
    const length = sectors * 512;
    const ctx = { policy: this.opts.policy, errors: this.opts.errors };
    let req: ServeRequest;
    switch (op) {
      case OP.READ:
      case OP.WRITE: {
        if (length > this.info.maxIoBufBytes) return -osConstants.errno.EINVAL;
        if (op === OP.READ) {
          const r = await execute(this.opts.device, { kind: 'read', offset, length }, ctx);
          if (!r.ok) return -errnoNumber(r.errno);
          const buffer = this.buffers[q] as Uint8Array;
          if (r.data) buffer.set(r.data, tag * this.info.maxIoBufBytes);
          return length;
        }
        const base = tag * this.info.maxIoBufBytes;
        const data = (this.buffers[q] as Uint8Array).subarray(base, base + length);
        req = { kind: 'write', offset, length, data, flags: { fua } };
        const r = await execute(this.opts.device, req, ctx);
        return r.ok ? length : -errnoNumber(r.errno);
      }
      case OP.FLUSH:
        req = { kind: 'flush', offset: 0, length: 0 };
        break;
      case OP.DISCARD:
        req = { kind: 'trim', offset, length, flags: { fua } };
        break;
      case OP.WRITE_ZEROES:
        req = { kind: 'write-zeroes', offset, length, flags: { fua, noHole: (opFlags & IO_F.NOUNMAP) !== 0 } };
        break;
      default:
        return -EOPNOTSUPP;
    }
    const r = await execute(this.opts.device, req, ctx);
    return r.ok ? 0 : -errnoNumber(r.errno);
  }

  /** Completions of one turn go to the queue's ring together (one call, one io_uring_enter). */
  private complete(q: number, tag: number, result: number): void {
    const pairs = this.completions[q] as Int32Array;
    const n = this.completionCounts[q] as number;
    pairs[2 * n] = tag;
    pairs[2 * n + 1] = result;
    this.completionCounts[q] = n + 1;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushCompletions());
    }
  }

  private flushCompletions(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    for (let q = 0; q < this.completions.length; q++) {
      const n = this.completionCounts[q] as number;
      if (n === 0) continue;
      this.completionCounts[q] = 0;
      this.addon.completeMany(this.handle, q, this.completions[q] as Int32Array, n);
    }
  }

  /** Drainable: STOP_DEV (the disk goes away; its requests in flight are still served). */
  async stopAccepting(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    try {
      await control.stopDev(this.devId);
    } catch (err) {
      // A device that is already gone (deleted by someone else) has nothing left to stop.
      if (control.controlErrno(err) !== 'ENODEV') throw err;
    }
  }

  /** Drainable: the requests in flight finish, the queue threads end, /dev/ublkcN is closed. */
  async drain(): Promise<void> {
    await this.inFlight.drained();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUEUE_END_GRACE_MS)));
    await Promise.race([this.ended, grace]);
    clearTimeout(timer);
    await this.inFlight.drained();
    this.flushCompletions();
    this.close();
  }

  /** Ends the queue threads and closes /dev/ublkcN (after a failed start, or at the end of drain()). */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.closeQueues(this.handle);
    this.resolveEnded();
  }

  private async abandon(): Promise<void> {
    this.addon.stopQueues(this.handle);
    await this.inFlight.drained();
    this.close();
  }

  /** DEL_DEV: the device id is free again. After drain(). */
  async delete(): Promise<void> {
    await control.delDev(this.devId);
  }

  /** Errors the queue threads ended with (errno numbers; empty when they ended normally). */
  get queueFailures(): readonly number[] {
    return this.queueErrors;
  }
}

/** A one-line description of a ublk failure for the CLI. */
export function describeUblkError(err: unknown): string {
  if (isQcow2Error(err)) return err.describe();
  return `internal error: ${(err as Error).message ?? String(err)}`;
}
