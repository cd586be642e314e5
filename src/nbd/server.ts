/**
 * The NBD server: one export (one open device, shared by every connection), listening on a unix
 * socket or TCP. Each connection negotiates (handshake.ts) within NBD_HANDSHAKE_TIMEOUT_MS, then
 * serves requests (connection.ts) on the shared engine.
 *
 * - At most `shared` connections are served at once (qemu-nbd's `-e`, default 1; 0: no limit);
 *   one more is answered politely (NBD_REP_ERR_POLICY to each option, with the reason), and
 *   beyond a few such, connections are closed at once.
 * - Without `persistent` (qemu-nbd's `-t`), `idle` resolves when the last served client has gone
 *   (after the first one came), as qemu-nbd exits then.
 * - Transmission flags tell the truth: READ_ONLY for a read-only device; otherwise WRITE_ZEROES,
 *   FAST_ZERO if the device can zero fast, TRIM if the device can free space (with the default
 *   --discard=ignore a trim is taken and does nothing, as qemu-nbd does). FLUSH, FUA and CACHE
 *   always; DF with structured replies; CAN_MULTI_CONN
 *   whenever more than one connection is allowed (`-e` other than 1, as qemu-nbd): every
 *   connection uses the one engine, so a flush on any connection covers writes completed on all
 *   of them. ROTATIONAL never.
 * - A typed engine error fails its request only; it is reported once on the error sink.
 * - With `tls`, TLS is required (handshake.ts): after NBD_OPT_STARTTLS the socket is handed to
 *   the TLS layer (tls.ts) and the handshake, then the requests, go on over the TLS socket.
 * - stopAccepting() + drain() (the serving core's graceful shutdown): the listening socket closes,
 *   handshakes are cut, and every connection finishes its requests in flight, sends the replies
 *   and closes.
 */
import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BlockDevice, PersistentBitmap } from '../engine/types.js';
import { isQcow2 } from '../engine/types.js';
import { ioError } from '../errors.js';
import { MAX_SERVE_REQUEST_BYTES, NBD_HANDSHAKE_TIMEOUT_MS } from '../limits.js';
import { ErrorLog, type LogSink } from '../serve/log.js';
import { DEFAULT_POLICY, type ServePolicy } from '../serve/request.js';
import type { Drainable } from '../serve/shutdown.js';
import { NbdConnection } from './connection.js';
import { type ExportSpec, negotiate, optionName } from './handshake.js';
import { CONTEXT, TRANSMISSION_FLAG } from './protocol.js';
import { type TlsConfig, upgrade } from './tls.js';
import { ReadAborted, SocketReader } from './wire.js';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface NbdServerOptions {
  device: BlockDevice;
  /** The export's name (qemu-nbd's -x; default ''). */
  exportName?: string;
  /** Shown to clients (NBD_OPT_LIST, NBD_INFO_DESCRIPTION; qemu-nbd's -D). */
  description?: string;
  listen: ListenAddress;
  /** Connections served at once; 0: no limit. Default 1, as qemu-nbd. */
  shared?: number;
  /** Keep serving when the last client leaves (qemu-nbd's -t). */
  persistent?: boolean;
  /** Offer the qemu:allocation-depth metadata context (qemu-nbd's -A). */
  allocationDepth?: boolean;
  /** Offer this persistent bitmap as qemu:dirty-bitmap:NAME (qemu-nbd's -B). */
  bitmap?: PersistentBitmap;
  policy?: ServePolicy;
  /** Connection events (qemu-nbd's -v); default silent. */
  events?: LogSink;
  /** TLS credentials: TLS is then required of every client (NBD_OPT_STARTTLS first). */
  tls?: TlsConfig;
  /** Engine errors (each distinct one once) and server failures. */
  errors?: LogSink;
}

/** Connections over the limit answered politely at once; more than this are closed straight away. */
const MAX_REFUSING = 16;

interface Client {
  /** The connection's stream: the socket, or the TLS socket over it after NBD_OPT_STARTTLS. */
  stream: Duplex;
  socket: Socket;
  reader: SocketReader;
  label: string;
  connection: NbdConnection | undefined;
  /** A TLS handshake under way (after NBD_OPT_STARTTLS): how to cut it. */
  upgrading?: { abort: (err: Error) => void } | undefined;
  task: Promise<void>;
}

/**
 * The transmission flags of `device`'s export (what qemu-nbd advertises, where the device allows
 * it). `multiConn`: more than one connection may be open (`-e` is not 1); every connection runs
 * on the one engine, so a flush covers them all.
 */
export function transmissionFlags(device: BlockDevice, structured: boolean, multiConn: boolean): number {
  const F = TRANSMISSION_FLAG;
  // FUA on a read-only export is true of nothing, and harmless: qemu-nbd offers it too.
  let flags = F.HAS_FLAGS | F.SEND_FLUSH | F.SEND_FUA | F.SEND_CACHE;
  if (multiConn) flags |= F.CAN_MULTI_CONN;
  if (structured) flags |= F.SEND_DF;
  if (device.readOnly) return flags | F.READ_ONLY;
  flags |= F.SEND_WRITE_ZEROES;
  if (device.capabilities.fastZero) flags |= F.SEND_FAST_ZERO;
  // A trim is a hint: with --discard=ignore (the default) it is taken and does nothing.
  if (device.capabilities.discard) flags |= F.SEND_TRIM;
  return flags;
}

export function exportSpec(opts: NbdServerOptions): ExportSpec {
  const { device } = opts;
  const preferred = isQcow2(device) ? Math.max(4096, device.clusterSize) : 4096;
  return {
    name: opts.exportName ?? '',
    description: opts.description ?? '',
    size: device.virtualSize,
    // A client told it may use several connections (nbdcopy opens four) must be able to.
    flags: (structured) => transmissionFlags(device, structured, (opts.shared ?? 1) !== 1),
    // Our engines take any byte offset and length: no client has to align (minimum 1).
    blockSizes: { minimum: 1, preferred, maximum: MAX_SERVE_REQUEST_BYTES },
    contexts: [
      CONTEXT.BASE_ALLOCATION,
      ...(opts.allocationDepth ? [CONTEXT.ALLOCATION_DEPTH] : []),
      ...(opts.bitmap ? [CONTEXT.DIRTY_BITMAP_PREFIX + opts.bitmap.name] : []),
    ],
  };
}

export class NbdServer implements Drainable {
  private readonly clients = new Set<Client>();
  private served = 0;
  private refusing = 0;
  private everServed = false;
  private stopping = false;
  private listening = true;
  private nextId = 1;
  private readonly spec: ExportSpec;
  private readonly errors: ErrorLog;
  private readonly events: LogSink;
  private idleResolve!: () => void;
  /** Resolves when, without `persistent`, the last served client has gone. */
  readonly idle: Promise<void>;

  private constructor(
    private readonly server: Server,
    private readonly opts: NbdServerOptions,
  ) {
    this.spec = exportSpec(opts);
    this.errors = new ErrorLog(opts.errors ?? (() => {}));
    this.events = opts.events ?? (() => {});
    this.idle = new Promise((resolve) => (this.idleResolve = resolve));
    server.on('connection', (socket) => this.onConnection(socket));
    server.on('error', (err) => (opts.errors ?? (() => {}))(`listening socket: ${err.message}`));
  }

  /** Starts listening; resolves once the socket accepts connections. */
  static async listen(opts: NbdServerOptions): Promise<NbdServer> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const where = opts.listen;
    if (where.kind === 'unix') await removeStaleSocket(where.path);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException) => reject(ioError(`cannot listen on ${describeAddress(where)}: ${err.code ?? err.message}`, { cause: err }));
      server.once('error', fail);
      const done = () => {
        server.off('error', fail);
        resolve();
      };
      if (where.kind === 'unix') server.listen(where.path, done);
      else server.listen({ host: where.host, port: where.port }, done);
    });
    return new NbdServer(server, opts);
  }

  /** Where the server listens (`unix:PATH` or `HOST:PORT`, with the port actually bound). */
  address(): string {
    const where = this.opts.listen;
    if (where.kind === 'unix') return `unix:${where.path}`;
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? `${a.address}:${a.port}` : describeAddress(where);
  }

  /** The TCP port bound (useful with port 0); undefined on a unix socket. */
  get port(): number | undefined {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : undefined;
  }

  /** Connections open now (served and refused, in any phase). */
  get connectionCount(): number {
    return this.clients.size;
  }

  async stopAccepting(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    // close() stops listening at once; its callback would wait for every connection to end (the
    // drain does that), so it is not awaited here.
    this.server.close();
    // libuv removes a unix socket it bound when it closes; make sure no stale one is left.
    if (this.opts.listen.kind === 'unix') await unlink(this.opts.listen.path).catch(() => {});
  }

  async drain(): Promise<void> {
    this.stopping = true;
    for (const c of this.clients) {
      if (c.connection) c.connection.stop();
      else {
        c.reader.abort(new ReadAborted('server shutting down'));
        c.upgrading?.abort(new ReadAborted('server shutting down'));
      }
    }
    await Promise.allSettled([...this.clients].map((c) => c.task));
  }

  private onConnection(socket: Socket): void {
    if (this.stopping || !this.listening) {
      socket.destroy();
      return;
    }
    const limit = this.opts.shared ?? 1;
    const counted = limit === 0 || this.served < limit;
    if (!counted && this.refusing >= MAX_REFUSING) {
      socket.destroy();
      return;
    }
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    const id = this.nextId++;
    const label = socket.remoteAddress !== undefined ? `client ${id} (${socket.remoteAddress}:${socket.remotePort})` : `client ${id}`;
    if (counted) {
      this.served++;
      this.everServed = true;
    } else this.refusing++;
    this.events(`${label}: connected${counted ? '' : ` (over the limit of ${limit}: refusing)`}`);
    const client: Client = { stream: socket, socket, reader: new SocketReader(socket), label, connection: undefined, task: Promise.resolve() };
    socket.resume();
    this.clients.add(client);
    client.task = this.serve(client, counted)
      .catch((err: unknown) => (this.opts.errors ?? (() => {}))(`${label}: ${(err as Error).message}`))
      .finally(() => {
        client.stream.destroy();
        socket.destroy();
        this.clients.delete(client);
        if (counted) this.served--;
        else this.refusing--;
        if (counted && this.served === 0 && this.everServed && !this.opts.persistent) this.idleResolve();
      });
  }

  private async serve(client: Client, counted: boolean): Promise<void> {
    const { socket, label } = client;
    const timer = setTimeout(() => {
      client.reader.abort(new ReadAborted('handshake timed out'));
      client.upgrading?.abort(new ReadAborted('handshake timed out'));
    }, NBD_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    const ioOf = (stream: Duplex, reader: SocketReader) => ({
      read: (n: number) => reader.read(n),
      skip: (n: number) => reader.skip(n),
      write: (bytes: Uint8Array) => {
        if (!stream.destroyed && stream.writable) stream.write(bytes);
      },
    });
    const io = ioOf(socket, client.reader);
    const tlsConfig = this.opts.tls;
    const tls = tlsConfig && {
      start: async () => {
        // The client waits for the ACK before its ClientHello: bytes already here are not TLS.
        if (client.reader.pendingBytes > 0) throw new Error('data sent after NBD_OPT_STARTTLS before its reply');
        client.reader.detach();
        const up = upgrade(socket, tlsConfig);
        client.upgrading = up;
        const secure = await up.ready.finally(() => (client.upgrading = undefined));
        client.stream = secure;
        this.events(`${label}: TLS established (${secure.getProtocol() ?? 'TLS'}, ${secure.getCipher().name})`);
        client.reader = new SocketReader(secure);
        return ioOf(secure, client.reader);
      },
    };
    const limit = this.opts.shared ?? 1;
    let outcome;
    try {
      outcome = await negotiate(io, this.spec, {
        ...(tls ? { tls } : {}),
        ...(counted ? {} : { refuse: `this server serves at most ${limit} client${limit === 1 ? '' : 's'} at once (qemu-nbd -e); try again later` }),
        onOption: (option, length) => this.events(`${label}: ${optionName(option)} (${length} bytes)`),
      });
    } catch (err) {
      outcome = { kind: 'closed' as const, reason: handshakeEnd(err) };
    } finally {
      clearTimeout(timer);
    }
    if (outcome.kind === 'closed' || this.stopping) {
      this.events(`${label}: handshake ended: ${outcome.kind === 'closed' ? outcome.reason : 'server shutting down'}`);
      await endSocket(client.stream);
      return;
    }
    const contexts = outcome.contexts.map((c) => c.name).join(', ');
    this.events(
      `${label}: serving export '${this.spec.name}' (${outcome.via === 'go' ? 'NBD_OPT_GO' : 'NBD_OPT_EXPORT_NAME'}, ${
        outcome.structured ? 'structured replies' : 'simple replies'
      }${contexts ? `, contexts ${contexts}` : ''})`,
    );
    const connection = new NbdConnection(client.stream, client.reader, {
      device: this.opts.device,
      serve: { policy: this.opts.policy ?? DEFAULT_POLICY, errors: this.errors },
      structured: outcome.structured,
      contexts: outcome.contexts,
      ...(this.opts.bitmap ? { bitmap: this.opts.bitmap } : {}),
      flags: outcome.flags,
      events: this.events,
      label,
    });
    client.connection = connection;
    if (this.stopping) connection.stop();
    const reason = await connection.run();
    this.events(`${label}: disconnected (${reason})`);
  }
}

function handshakeEnd(err: unknown): string {
  if (err instanceof ReadAborted) return err.message;
  return (err as Error).message;
}

function endSocket(socket: Duplex): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once('close', () => resolve());
    const timer = setTimeout(() => socket.destroy(), 5000);
    timer.unref();
    socket.end();
  });
}

export function describeAddress(where: ListenAddress): string {
  return where.kind === 'unix' ? `unix socket '${where.path}'` : `${where.host.includes(':') ? `[${where.host}]` : where.host}:${where.port}`;
}

/** A unix socket left by an earlier server is removed (as QEMU does); anything else there is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw ioError(`cannot listen on unix socket '${path}': a file that is not a socket is in the way`);
  await unlink(path);
}
