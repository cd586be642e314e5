/**
 * The transmission phase of one NBD connection (NetworkBlockDevice/nbd doc/proto.md,
 * "Transmission"): request headers and write payloads are read in order, each request runs on the
 * shared engine through the serving core (src/serve/request.ts) as soon as it is read, and its
 * reply is sent when it completes, in whatever order requests complete.
 *
 * - Replies: simple replies, or with structured replies negotiated: reads as OFFSET_DATA and
 *   OFFSET_HOLE chunks (a read up to 64 KiB is one chunk, a hole when its bytes are all zero; in a
 *   longer one the ranges the device reports as zeros are holes; with NBD_CMD_FLAG_DF one data
 *   chunk), block status as one BLOCK_STATUS chunk per selected context
 *   (32-bit descriptors, at most the client's length, one with REQ_ONE), errors as ERROR chunks
 *   with a message. A reply is written in one go, so replies never interleave on the socket.
 * - Backpressure: no new request is read while SERVE_MAX_REQUESTS_IN_FLIGHT requests or
 *   SERVE_MAX_BYTES_IN_FLIGHT payload bytes are in flight, or while more than
 *   SERVE_WRITE_HIGH_WATER reply bytes wait in the socket (resumed on 'drain').
 * - Closing: NBD_CMD_DISC, the client closing, a request with a bad magic, or a write payload over
 *   MAX_SERVE_REQUEST_BYTES (which cannot be skipped) stop the reading; the requests in flight
 *   finish and their replies are sent, then the socket is closed.
 * - Errors: an unknown command or a flag not valid for its command is EINVAL; the serving core's
 *   errnos become NBD error values (nbdError in protocol.ts).
 */
import type { Duplex } from 'node:stream';
import type { BlockDevice, PersistentBitmap, StatusExtent } from '../engine/types.js';
import { type Errno, errnoOf, errnoText } from '../errors.js';
import { isZero } from '../format/bytes.js';
import { BLOCK_STATUS_CHUNK_BYTES, MAX_SERVE_REQUEST_BYTES, SERVE_COALESCE_BYTES, SERVE_COALESCE_PART_BYTES, SPARSE_READ_BY_STATUS_MIN, NBD_MAX_STATUS_EXTENTS, SERVE_MAX_BYTES_IN_FLIGHT, SERVE_MAX_REQUESTS_IN_FLIGHT, SERVE_WRITE_HIGH_WATER } from '../limits.js';
import type { LogSink } from '../serve/log.js';
import { execute, type ServeContext, type ServeRequest } from '../serve/request.js';
import { InFlight } from '../serve/shutdown.js';
import type { SelectedContext } from './handshake.js';
import {
  CMD,
  CMD_FLAG,
  CONTEXT,
  decodeRequest,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeNoneChunk,
  encodeOffsetDataHead,
  encodeOffsetHole,
  encodeSimpleReply,
  nbdError,
  REPLY_FLAG_DONE,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  type RequestHeader,
  STATE,
  STATE_DIRTY,
  type StatusDescriptor,
  TRANSMISSION_FLAG,
} from './protocol.js';
import { EndOfStream, ReadAborted, type SocketReader } from './wire.js';

export interface ConnectionConfig {
  device: BlockDevice;
  serve: ServeContext;
  structured: boolean;
  contexts: readonly SelectedContext[];
  /** The persistent bitmap behind a qemu:dirty-bitmap: context. */
  bitmap?: PersistentBitmap;
  /** The transmission flags the client was given. */
  flags: number;
  /** Connection events (verbose). */
  events: LogSink;
  /** How events name this client. */
  label: string;
}

/** How long a closed connection may take to flush its last replies before it is destroyed. */
const CLOSE_GRACE_MS = 5000;

const COMMAND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(CMD).map(([k, v]) => [v, `NBD_CMD_${k}`]));

/** The flags each command takes (FUA is accepted on every command, as the spec requires). */
function allowedFlags(type: number, structured: boolean): number {
  switch (type) {
    case CMD.READ:
      return CMD_FLAG.FUA | (structured ? CMD_FLAG.DF : 0);
    case CMD.WRITE_ZEROES:
      return CMD_FLAG.FUA | CMD_FLAG.NO_HOLE | CMD_FLAG.FAST_ZERO;
    case CMD.BLOCK_STATUS:
      return CMD_FLAG.FUA | CMD_FLAG.REQ_ONE;
    default:
      return CMD_FLAG.FUA;
  }
}

export class NbdConnection {
  private readonly inFlight = new InFlight();
  private inFlightBytes = 0;
  private stopping = false;
  private gateWake: (() => void) | undefined;
  private outQueue: Uint8Array[] = [];
  /** Bytes in outQueue: replies finished but not yet handed to the socket count against the high-water mark. */
  private outQueueBytes = 0;
  private flushScheduled = false;

  constructor(
    private readonly socket: Duplex,
    private readonly reader: SocketReader,
    private readonly cfg: ConnectionConfig,
  ) {
    // Replies drained, or the socket closed (then the next read ends the loop instead of waiting).
    socket.on('drain', () => this.wakeGate());
    socket.on('close', () => this.wakeGate());
  }

  /** Requests in flight now. */
  get pending(): number {
    return this.inFlight.size;
  }

  /**
   * Serves requests until the client disconnects or stop() is called, then lets the requests in
   * flight finish, sends their replies and closes the socket. Resolves with why it ended.
   */
  async run(): Promise<string> {
    let reason: string;
    try {
      reason = await this.readLoop();
    } catch (err) {
      reason =
        err instanceof EndOfStream
          ? err.partial
            ? 'client disconnected in the middle of a request'
            : 'client disconnected'
          : err instanceof ReadAborted
            ? 'server shutting down'
            : `read failed: ${(err as Error).message}`;
    }
    this.reader.abort();
    await this.inFlight.drained();
    await this.close();
    return reason;
  }

  /** Stops reading requests; run() then finishes what is in flight and closes. */
  stop(): void {
    this.stopping = true;
    this.reader.abort();
    this.wakeGate();
  }

  private async readLoop(): Promise<string> {
    for (;;) {
      await this.gate();
      if (this.stopping) return 'server shutting down';
      const header = decodeRequest(await this.reader.read(REQUEST_HEADER_BYTES));
      if (header.magic !== REQUEST_MAGIC) return `bad request magic 0x${header.magic.toString(16)}`;
      if (header.type === CMD.DISC) return 'NBD_CMD_DISC';
      let payload: Uint8Array | undefined;
      if (header.type === CMD.WRITE) {
        if (header.length > MAX_SERVE_REQUEST_BYTES) return `write payload of ${header.length} bytes is over the limit (${MAX_SERVE_REQUEST_BYTES})`;
        payload = await this.reader.read(header.length);
      }
      this.dispatch(header, payload);
    }
  }

  private gateOpen(): boolean {
    return (
      this.stopping ||
      this.socket.destroyed ||
      (this.inFlight.size < SERVE_MAX_REQUESTS_IN_FLIGHT &&
        this.inFlightBytes < SERVE_MAX_BYTES_IN_FLIGHT &&
        this.socket.writableLength + this.outQueueBytes <= SERVE_WRITE_HIGH_WATER)
    );
  }

  private async gate(): Promise<void> {
    while (!this.gateOpen()) await new Promise<void>((resolve) => (this.gateWake = resolve));
  }

  private wakeGate(): void {
    const w = this.gateWake;
    this.gateWake = undefined;
    w?.();
  }

  private dispatch(h: RequestHeader, payload: Uint8Array | undefined): void {
    const bytes = h.type === CMD.READ ? Math.min(h.length, MAX_SERVE_REQUEST_BYTES) : (payload?.byteLength ?? 0);
    this.inFlightBytes += bytes;
    const work = this.handle(h, payload)
      .catch((err: unknown) => {
        // Only a bug gets here (execute() never throws): report it, answer EIO.
        this.cfg.serve.errors.report(err, `${COMMAND_NAMES[h.type] ?? 'request'} reply`);
        this.replyError(h, 'EIO', 'internal error');
      })
      .finally(() => {
        this.inFlightBytes -= bytes;
        this.wakeGate();
      });
    void this.inFlight.track(work);
  }

  private async handle(h: RequestHeader, payload: Uint8Array | undefined): Promise<void> {
    const { structured } = this.cfg;
    const name = COMMAND_NAMES[h.type];
    if (name === undefined || h.type === CMD.RESIZE) return this.replyError(h, 'EINVAL', `unknown command ${h.type}`);
    const stray = h.flags & ~allowedFlags(h.type, structured);
    if (stray !== 0) return this.replyError(h, 'EINVAL', `flags 0x${stray.toString(16)} are not valid for ${name}`);
    if (h.flags & CMD_FLAG.FAST_ZERO && !(this.cfg.flags & TRANSMISSION_FLAG.SEND_FAST_ZERO)) {
      return this.replyError(h, 'EINVAL', 'NBD_CMD_FLAG_FAST_ZERO was not negotiated');
    }
    const changes = h.type === CMD.WRITE || h.type === CMD.WRITE_ZEROES;
    if (h.offset > BigInt(Number.MAX_SAFE_INTEGER)) {
      return this.replyError(h, changes ? 'ENOSPC' : 'EINVAL', `${name} beyond the end of the export`);
    }
    const offset = Number(h.offset);
    const length = h.length;
    const flags = {
      fua: (h.flags & CMD_FLAG.FUA) !== 0,
      noHole: (h.flags & CMD_FLAG.NO_HOLE) !== 0,
      fastZero: (h.flags & CMD_FLAG.FAST_ZERO) !== 0,
    };
    switch (h.type) {
      case CMD.READ:
        return this.read(h, offset, length, (h.flags & CMD_FLAG.DF) !== 0);
      case CMD.BLOCK_STATUS:
        return this.blockStatus(h, offset, length, (h.flags & CMD_FLAG.REQ_ONE) !== 0);
      case CMD.WRITE:
        return this.simple(h, { kind: 'write', offset, length, flags, ...(payload ? { data: payload } : {}) });
      case CMD.FLUSH:
        return this.simple(h, { kind: 'flush', offset: 0, length: 0 });
      case CMD.TRIM:
        return this.simple(h, { kind: 'trim', offset, length, flags });
      case CMD.CACHE:
        return this.simple(h, { kind: 'cache', offset, length });
      case CMD.WRITE_ZEROES:
        return this.simple(h, { kind: 'write-zeroes', offset, length, flags });
      default:
        return this.replyError(h, 'EINVAL', `unknown command ${h.type}`);
    }
  }

  /** A request whose success carries no data: a simple reply (allowed in either mode). */
  private async simple(h: RequestHeader, req: ServeRequest): Promise<void> {
    const res = await execute(this.cfg.device, req, this.cfg.serve);
    if (res.ok) this.send([encodeSimpleReply(0, h.cookie)]);
    else this.replyError(h, res.errno, res.message);
  }

  private async read(h: RequestHeader, offset: number, length: number, df: boolean): Promise<void> {
    const { device, serve, structured } = this.cfg;
    // Long structured reads ask where the holes are (in parallel with the read); short ones look at the bytes.
    const byStatus = structured && !df && length >= SPARSE_READ_BY_STATUS_MIN && length <= MAX_SERVE_REQUEST_BYTES;
    const [res, status] = await Promise.all([
      execute(device, { kind: 'read', offset, length }, serve),
      byStatus ? execute(device, { kind: 'block-status', offset, length }, serve) : undefined,
    ]);
    if (!res.ok) return this.replyError(h, res.errno, res.message);
    const data = res.data ?? new Uint8Array(0);
    if (!structured) {
      this.send(length > 0 ? [encodeSimpleReply(0, h.cookie), data] : [encodeSimpleReply(0, h.cookie)]);
      return;
    }
    if (length === 0) {
      this.send([encodeNoneChunk(h.cookie)]);
      return;
    }
    const pieces =
      status?.ok && status.extents
        ? readPieces(offset, length, status.extents)
        : [{ start: offset, length, hole: !df && !byStatus && isZero(data) }];
    const parts: Uint8Array[] = [];
    pieces.forEach((p, i) => {
      const flags = i === pieces.length - 1 ? REPLY_FLAG_DONE : 0;
      if (p.hole) parts.push(encodeOffsetHole(flags, h.cookie, p.start, p.length));
      else parts.push(encodeOffsetDataHead(flags, h.cookie, p.start, p.length), data.subarray(p.start - offset, p.start - offset + p.length));
    });
    this.send(parts);
  }

  private async blockStatus(h: RequestHeader, offset: number, length: number, reqOne: boolean): Promise<void> {
    const { contexts } = this.cfg;
    if (!this.cfg.structured || contexts.length === 0) return this.replyError(h, 'EINVAL', 'no metadata context was negotiated');
    const res = await execute(this.cfg.device, { kind: 'block-status', offset, length }, this.cfg.serve);
    if (!res.ok) return this.replyError(h, res.errno, res.message);
    const extents = res.extents ?? [];
    const chunks: Uint8Array[] = [];
    for (const [i, c] of contexts.entries()) {
      const flags = i === contexts.length - 1 ? REPLY_FLAG_DONE : 0;
      if (!c.name.startsWith(CONTEXT.DIRTY_BITMAP_PREFIX)) {
        chunks.push(encodeBlockStatusChunk(flags, h.cookie, c.id, statusDescriptors(extents, c.name, offset, length, reqOne)));
        continue;
      }
      const dirty = await this.bitmapDescriptors(offset, length, reqOne);
      if (!dirty.ok) return this.replyError(h, dirty.errno, dirty.message);
      chunks.push(encodeBlockStatusChunk(flags, h.cookie, c.id, dirty.descriptors));
    }
    this.send(chunks);
  }

  /** qemu:dirty-bitmap:NAME's descriptors: runs of set (DIRTY) and clear bits. */
  private async bitmapDescriptors(
    offset: number,
    length: number,
    reqOne: boolean,
  ): Promise<{ ok: true; descriptors: StatusDescriptor[] } | { ok: false; errno: Errno; message: string }> {
    const bitmap = this.cfg.bitmap;
    if (!bitmap) return { ok: true, descriptors: [{ length, flags: 0 }] };
    try {
      const runs = await bitmap.runs(offset, Math.min(length, BLOCK_STATUS_CHUNK_BYTES), reqOne ? 1 : NBD_MAX_STATUS_EXTENTS);
      const descriptors = runs.map((r) => ({ length: r.length, flags: r.dirty ? STATE_DIRTY : 0 }));
      return { ok: true, descriptors: descriptors.length > 0 ? descriptors : [{ length, flags: 0 }] };
    } catch (err) {
      const errno = errnoOf(err);
      this.cfg.serve.errors.report(err, `dirty bitmap status of ${length} bytes at ${offset}`);
      return { ok: false, errno, message: errnoText(errno) };
    }
  }

  private replyError(h: RequestHeader, errno: Errno, message: string): void {
    const error = nbdError(errno);
    if (this.cfg.structured) this.send([encodeErrorChunk(REPLY_FLAG_DONE, h.cookie, error, message)]);
    else this.send([encodeSimpleReply(error, h.cookie)]);
  }

  /**
   * Queues one whole reply. Replies queued in the same turn of the event loop go out together in
   * one corked write (one writev for many completions); a reply is never split by another.
   */
  private send(parts: readonly Uint8Array[]): void {
    if (this.socket.destroyed) return;
    for (const p of parts) {
      this.outQueue.push(p);
      this.outQueueBytes += p.byteLength;
    }
    // Past the high-water mark, hand them to the socket now (its 'drain' then reopens the gate).
    if (this.outQueueBytes > SERVE_WRITE_HIGH_WATER) return this.flushOut();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushOut());
    }
  }

  private flushOut(): void {
    this.flushScheduled = false;
    const queue = this.outQueue;
    if (queue.length === 0) return;
    const bytes = this.outQueueBytes;
    this.outQueue = [];
    this.outQueueBytes = 0;
    const s = this.socket;
    if (s.destroyed || !s.writable) return;
    if (queue.length === 1) s.write(queue[0]!);
    else if (bytes <= SERVE_COALESCE_BYTES && bytes / queue.length <= SERVE_COALESCE_PART_BYTES) {
      // Small replies are copied into one buffer: one stream write instead of one per part
      // (each costs more than copying a few KiB; for larger parts the copy costs more).
      s.write(Buffer.concat(queue, bytes));
    } else {
      s.cork();
      for (const p of queue) s.write(p);
      s.uncork();
    }
    // The queued bytes now count in the socket's buffer: a gate they held shut may open (if the
    // socket is still above its high-water mark, 'drain' wakes it later).
    this.wakeGate();
  }

  private close(): Promise<void> {
    this.flushOut();
    const s = this.socket;
    if (s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      const timer = setTimeout(() => s.destroy(), CLOSE_GRACE_MS);
      timer.unref();
      s.end();
    });
  }
}

export interface ReadPiece {
  start: number;
  length: number;
  /** Reads as zeros: sent as an OFFSET_HOLE chunk. */
  hole: boolean;
}

/**
 * The chunks of a structured read reply: ranges the device reports as zeros are holes, the rest
 * data, adjacent data ranges merged; whatever the extents do not cover is data.
 */
export function readPieces(offset: number, length: number, extents: readonly StatusExtent[]): ReadPiece[] {
  const end = offset + length;
  const out: ReadPiece[] = [];
  const push = (start: number, len: number, hole: boolean) => {
    if (len <= 0) return;
    const last = out[out.length - 1];
    if (last && last.hole === hole && last.start + last.length === start) last.length += len;
    else out.push({ start, length: len, hole });
  };
  let at = offset;
  for (const e of extents) {
    const s = Math.max(e.start, at);
    const t = Math.min(e.start + e.length, end);
    if (s !== at || t <= s) continue;
    push(s, t - s, e.zero);
    at = t;
  }
  push(at, end - at, false);
  return out;
}

/**
 * One context's descriptors for [offset, offset + length): base:allocation's HOLE and ZERO flags,
 * or qemu:allocation-depth's depth; runs of equal flags merged, at most NBD_MAX_STATUS_EXTENTS
 * (the client asks again for the rest), one with REQ_ONE. Never more than the client's length.
 */
export function statusDescriptors(extents: readonly StatusExtent[], context: string, offset: number, length: number, reqOne: boolean): StatusDescriptor[] {
  const flagsOf =
    context === CONTEXT.ALLOCATION_DEPTH ? (e: StatusExtent) => e.depth : (e: StatusExtent) => (e.data ? 0 : STATE.HOLE) | (e.zero ? STATE.ZERO : 0);
  const end = offset + length;
  const out: StatusDescriptor[] = [];
  let at = offset;
  for (const e of extents) {
    const s = Math.max(e.start, at);
    const t = Math.min(e.start + e.length, end);
    if (s !== at || t <= s) continue;
    const flags = flagsOf(e);
    const last = out[out.length - 1];
    if (last && last.flags === flags) last.length += t - s;
    else {
      if (out.length === (reqOne ? 1 : NBD_MAX_STATUS_EXTENTS)) break;
      out.push({ length: t - s, flags });
    }
    at = t;
  }
  // A device that described nothing: say nothing is known (flags 0), as the spec allows.
  if (out.length === 0) out.push({ length, flags: 0 });
  return out;
}
