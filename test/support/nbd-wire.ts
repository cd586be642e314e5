/**
 * A tiny NBD client on a raw socket, written from the protocol document (NetworkBlockDevice/nbd,
 * doc/proto.md) for tests that must misbehave on purpose: every message is built by hand and sent
 * when and as the test says (garbage, a header cut short, a payload never finished, replies never
 * read), and every byte the server sends is read and checked by the test.
 *
 *   const c = await WireClient.connect(server.endpoint);
 *   const { size } = await c.handshake({ exportName: 'disk' });     // fixed newstyle, NBD_OPT_GO
 *   c.request(CMD.READ, { offset: 0, length: 4096, handle: 1n });
 *   const r = await c.readSimpleReply();                           // { error, handle }
 *   const data = await c.readExact(4096);
 *
 * Reads wait for exactly the bytes asked for and fail with `ClosedError` when the server closes
 * first, or with a timeout. Numbers are big-endian, as on the wire.
 */
import { connect, type Socket } from 'node:net';
import type { Endpoint } from './nbd.js';

export const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags. */
export const TFLAG = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

export const OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;

export const REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
} as const;

export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

export const CMD = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
} as const;

export const CMD_FLAG = { FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4 } as const;

export const REPLY_FLAG_DONE = 1;
export const REPLY_TYPE = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  ERROR: 0x8001,
  ERROR_OFFSET: 0x8002,
} as const;

/** Error values (not the host's errno: the protocol's own list). */
export const ERR = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;

export class ClosedError extends Error {
  constructor(wanted: number, had: number) {
    super(`the server closed the connection (wanted ${wanted} bytes, ${had} buffered)`);
  }
}

export class WireTimeout extends Error {}

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface SimpleReply {
  error: number;
  handle: bigint;
}

export interface StructuredChunk {
  flags: number;
  type: number;
  handle: bigint;
  payload: Buffer;
}

export interface HandshakeOptions {
  exportName?: string;
  /** Negotiate NBD_OPT_STRUCTURED_REPLY first. */
  structured?: boolean;
  /** Contexts to select with NBD_OPT_SET_META_CONTEXT (needs `structured`). */
  metaContexts?: string[];
  /** NBD_INFO requests sent with NBD_OPT_GO (default: none, the server chooses). */
  infoRequests?: number[];
}

export interface Session {
  size: bigint;
  transmissionFlags: number;
  /** Context name → id, as the server assigned them. */
  contexts: Map<string, number>;
  /** NBD_INFO_BLOCK_SIZE, if the server sent it. */
  blockSize?: { minimum: number; preferred: number; maximum: number };
}

export class WireClient {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private eof = false;
  private closedFlag = false;
  private wake: (() => void) | null = null;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.notify();
    });
    socket.on('end', () => {
      this.eof = true;
      this.notify();
    });
    // Errors (EPIPE, ECONNRESET on a server's hard disconnect) end the stream like EOF does.
    socket.on('error', () => {
      this.eof = true;
      this.notify();
    });
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedFlag = true;
        this.eof = true;
        this.notify();
        resolve();
      }),
    );
  }

  static connect(endpoint: Endpoint, timeoutMs = 10_000): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const sock = 'path' in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new WireTimeout(`connect: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new WireClient(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Bytes received and not yet read. */
  get pending(): number {
    return this.buffered;
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Exactly `n` bytes, or ClosedError if the server closes first, or WireTimeout. */
  async readExact(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered < n) {
      if (this.eof) throw new ClosedError(n, this.buffered);
      const left = deadline - Date.now();
      if (left <= 0) throw new WireTimeout(`no ${n} bytes from the server in ${timeoutMs} ms (${this.buffered} buffered)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return Buffer.from(out);
  }

  /** Sends bytes; resolves when handed to the kernel, false if the connection is gone. */
  send(bytes: Uint8Array): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || this.socket.writableEnded) return resolve(false);
      this.socket.write(bytes, (err) => resolve(!err));
    });
  }

  /** Queues bytes without waiting (for floods): true while node's own buffer is below its mark. */
  queue(bytes: Uint8Array): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    return this.socket.write(bytes);
  }

  /** Stops taking bytes from the kernel: the server's replies pile up in the socket buffers. */
  stopReading(): void {
    this.socket.pause();
  }

  /**
   * Whether the server closes the connection within `timeoutMs`: what it sends meanwhile is
   * consumed and discarded (an unread receive buffer would make a close look like a reset).
   */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    this.socket.resume();
    const drain = setInterval(() => {
      this.chunks = [];
      this.buffered = 0;
    }, 50);
    try {
      return await Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
    } finally {
      clearInterval(drain);
    }
  }

  /** Hard disconnect from our side (RST-free close: we just drop the socket). */
  destroy(): void {
    this.socket.destroy();
  }

  // ---------------------------------------------------------------- handshake

  /** S: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
  async readGreeting(): Promise<{ handshakeFlags: number }> {
    const b = await this.readExact(18);
    if (b.readBigUInt64BE(0) !== NBDMAGIC) throw new Error(`greeting: bad magic ${b.subarray(0, 8).toString('hex')}`);
    if (b.readBigUInt64BE(8) !== IHAVEOPT) throw new Error(`greeting: not newstyle (${b.subarray(8, 16).toString('hex')})`);
    return { handshakeFlags: b.readUInt16BE(16) };
  }

  sendClientFlags(flags: number): Promise<boolean> {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(flags >>> 0);
    return this.send(b);
  }

  /** The 16-byte option header: IHAVEOPT, option, declared data length. */
  static optionHeader(option: number, length: number): Buffer {
    const b = Buffer.alloc(16);
    b.writeBigUInt64BE(IHAVEOPT, 0);
    b.writeUInt32BE(option >>> 0, 8);
    b.writeUInt32BE(length >>> 0, 12);
    return b;
  }

  sendOption(option: number, data: Uint8Array = new Uint8Array(0)): Promise<boolean> {
    return this.send(Buffer.concat([WireClient.optionHeader(option, data.length), data]));
  }

  async readOptionReply(timeoutMs = 10_000): Promise<OptionReply> {
    const h = await this.readExact(20, timeoutMs);
    const magic = h.readBigUInt64BE(0);
    if (magic !== OPTION_REPLY_MAGIC) throw new Error(`option reply: bad magic 0x${magic.toString(16)}`);
    const length = h.readUInt32BE(16);
    if (length > 16 << 20) throw new Error(`option reply: absurd length ${length}`);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.readExact(length, timeoutMs) };
  }

  /** NBD_OPT_GO/INFO data: name length, name, count of info requests, the requests. */
  static goData(exportName: string, infoRequests: number[] = []): Buffer {
    const name = Buffer.from(exportName, 'utf8');
    const b = Buffer.alloc(4 + name.length + 2 + 2 * infoRequests.length);
    b.writeUInt32BE(name.length, 0);
    name.copy(b, 4);
    b.writeUInt16BE(infoRequests.length, 4 + name.length);
    infoRequests.forEach((r, i) => b.writeUInt16BE(r, 6 + name.length + 2 * i));
    return b;
  }

  /** NBD_OPT_SET/LIST_META_CONTEXT data: export name, count of queries, the queries. */
  static metaContextData(exportName: string, queries: string[]): Buffer {
    const parts: Buffer[] = [];
    const name = Buffer.from(exportName, 'utf8');
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    parts.push(u32(name.length), name, u32(queries.length));
    for (const q of queries) {
      const qb = Buffer.from(q, 'utf8');
      parts.push(u32(qb.length), qb);
    }
    return Buffer.concat(parts);
  }

  /** Greeting and client flags (fixed newstyle, no NO_ZEROES). */
  async start(): Promise<{ handshakeFlags: number }> {
    const g = await this.readGreeting();
    if (!(g.handshakeFlags & FLAG_FIXED_NEWSTYLE)) throw new Error('server does not offer fixed newstyle');
    await this.sendClientFlags(FLAG_C_FIXED_NEWSTYLE);
    return g;
  }

  /** Reads replies to one option up to its final one (ACK or an error). */
  async optionReplies(option: number): Promise<OptionReply[]> {
    const replies: OptionReply[] = [];
    for (;;) {
      const r = await this.readOptionReply();
      if (r.option !== option) throw new Error(`reply to option ${r.option}, expected ${option}`);
      replies.push(r);
      if (r.type === REP.ACK || r.type & 0x80000000) return replies;
    }
  }

  /** Options after the greeting up to the transmission phase (NBD_OPT_GO). */
  async negotiate(opts: HandshakeOptions = {}): Promise<Session> {
    const name = opts.exportName ?? '';
    const contexts = new Map<string, number>();
    if (opts.structured) {
      await this.sendOption(OPT.STRUCTURED_REPLY);
      const [r] = await this.optionReplies(OPT.STRUCTURED_REPLY);
      if (r!.type !== REP.ACK) throw new Error(`NBD_OPT_STRUCTURED_REPLY refused: 0x${r!.type.toString(16)}`);
    }
    if (opts.metaContexts && opts.metaContexts.length > 0) {
      await this.sendOption(OPT.SET_META_CONTEXT, WireClient.metaContextData(name, opts.metaContexts));
      for (const r of await this.optionReplies(OPT.SET_META_CONTEXT)) {
        if (r.type === REP.META_CONTEXT) contexts.set(r.data.subarray(4).toString('utf8'), r.data.readUInt32BE(0));
        else if (r.type !== REP.ACK) throw new Error(`NBD_OPT_SET_META_CONTEXT failed: 0x${r.type.toString(16)}`);
      }
    }
    await this.sendOption(OPT.GO, WireClient.goData(name, opts.infoRequests));
    const session: Session = { size: -1n, transmissionFlags: 0, contexts };
    for (const r of await this.optionReplies(OPT.GO)) {
      if (r.type === REP.INFO) {
        const info = r.data.readUInt16BE(0);
        if (info === INFO.EXPORT) {
          session.size = r.data.readBigUInt64BE(2);
          session.transmissionFlags = r.data.readUInt16BE(10);
        } else if (info === INFO.BLOCK_SIZE) {
          session.blockSize = { minimum: r.data.readUInt32BE(2), preferred: r.data.readUInt32BE(6), maximum: r.data.readUInt32BE(10) };
        }
      } else if (r.type !== REP.ACK) {
        throw new Error(`NBD_OPT_GO failed: 0x${r.type.toString(16)} ${r.data.toString('utf8')}`);
      }
    }
    if (session.size < 0n) throw new Error('NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
    return session;
  }

  /** The whole handshake: greeting, client flags, options, NBD_OPT_GO. */
  async handshake(opts: HandshakeOptions = {}): Promise<Session> {
    await this.start();
    return this.negotiate(opts);
  }

  // ---------------------------------------------------------------- transmission

  static requestHeader(type: number, r: { flags?: number; handle?: bigint; offset?: bigint | number; length?: number; magic?: number }): Buffer {
    const b = Buffer.alloc(28);
    b.writeUInt32BE((r.magic ?? REQUEST_MAGIC) >>> 0, 0);
    b.writeUInt16BE(r.flags ?? 0, 4);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(r.handle ?? 0n, 8);
    b.writeBigUInt64BE(BigInt(r.offset ?? 0), 16);
    b.writeUInt32BE((r.length ?? 0) >>> 0, 24);
    return b;
  }

  /** Sends a request (with its payload, for a write); `length` defaults to the payload's. */
  request(
    type: number,
    r: { flags?: number; handle?: bigint; offset?: bigint | number; length?: number; payload?: Uint8Array; magic?: number } = {},
  ): Promise<boolean> {
    const length = r.length ?? r.payload?.length ?? 0;
    const header = WireClient.requestHeader(type, { ...r, length });
    return this.send(r.payload ? Buffer.concat([header, r.payload]) : header);
  }

  /** The next reply's magic decides: a simple reply (no payload read) or one structured chunk. */
  async readReply(timeoutMs = 10_000): Promise<({ kind: 'simple' } & SimpleReply) | ({ kind: 'structured' } & StructuredChunk)> {
    const m = await this.readExact(4, timeoutMs);
    const magic = m.readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const b = await this.readExact(12, timeoutMs);
      return { kind: 'simple', error: b.readUInt32BE(0), handle: b.readBigUInt64BE(4) };
    }
    if (magic === STRUCTURED_REPLY_MAGIC) {
      const b = await this.readExact(16, timeoutMs);
      const length = b.readUInt32BE(12);
      return { kind: 'structured', flags: b.readUInt16BE(0), type: b.readUInt16BE(2), handle: b.readBigUInt64BE(4), payload: await this.readExact(length, timeoutMs) };
    }
    throw new Error(`reply: bad magic 0x${magic.toString(16)}`);
  }

  /** A simple reply header (its read payload, if any, is left to readExact). */
  async readSimpleReply(timeoutMs = 10_000): Promise<SimpleReply> {
    const r = await this.readReply(timeoutMs);
    if (r.kind !== 'simple') throw new Error(`expected a simple reply, got structured chunk type ${r.type}`);
    return r;
  }

  /** All chunks of one structured reply, up to the one flagged DONE. */
  async readStructuredReply(timeoutMs = 10_000): Promise<StructuredChunk[]> {
    const chunks: StructuredChunk[] = [];
    for (;;) {
      const r = await this.readReply(timeoutMs);
      if (r.kind !== 'structured') {
        // Allowed for requests other than READ, and only without payload: an answer of its own.
        chunks.push({ flags: REPLY_FLAG_DONE, type: r.error ? REPLY_TYPE.ERROR : REPLY_TYPE.NONE, handle: r.handle, payload: errorPayload(r.error) });
        return chunks;
      }
      chunks.push(r);
      if (r.flags & REPLY_FLAG_DONE) return chunks;
    }
  }

  /** A read with simple replies: the error, and the data when there is none. */
  async read(offset: number | bigint, length: number, handle = 0x5eadn): Promise<{ error: number; data?: Buffer }> {
    await this.request(CMD.READ, { offset, length, handle });
    const r = await this.readSimpleReply();
    if (r.handle !== handle) throw new Error(`reply for handle ${r.handle}, expected ${handle}`);
    if (r.error) return { error: r.error };
    return { error: 0, data: await this.readExact(length) };
  }

  /** A write with simple replies: the error (0 on success). */
  async write(offset: number | bigint, payload: Uint8Array, flags = 0, handle = 0x3717n): Promise<number> {
    await this.request(CMD.WRITE, { offset, payload, flags, handle });
    const r = await this.readSimpleReply();
    if (r.handle !== handle) throw new Error(`reply for handle ${r.handle}, expected ${handle}`);
    return r.error;
  }

  /** NBD_CMD_DISC, then waits for the server to close. */
  async disconnect(timeoutMs = 5_000): Promise<boolean> {
    await this.request(CMD.DISC);
    return this.closedWithin(timeoutMs);
  }
}

/** The error of an error chunk, 0 for any other chunk. */
export function chunkError(c: StructuredChunk): number {
  return c.type & 0x8000 ? c.payload.readUInt32BE(0) : 0;
}

function errorPayload(error: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt32BE(error);
  return b;
}
