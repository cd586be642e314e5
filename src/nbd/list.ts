/**
 * The client side of `qcow2 nbd -L`: connects to an NBD server, lists its exports (NBD_OPT_LIST),
 * asks each for its details (NBD_OPT_INFO with block sizes, NBD_OPT_LIST_META_CONTEXT after
 * structured replies), says NBD_OPT_ABORT, and prints what it learnt the way `qemu-nbd -L` does.
 *
 * The server is untrusted: every reply is checked against what was asked, reply payloads are
 * bounded (NBD_MAX_STRING_BYTES and a bit), and so are the number of exports and of contexts. A
 * server that stops answering is given up on after LIST_TIMEOUT_MS.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Qcow2Error } from '../errors.js';
import { NBD_MAX_STRING_BYTES } from '../limits.js';
import {
  CLIENT_FLAG,
  decodeGreeting,
  decodeInfoReply,
  decodeOptionReplyHeader,
  decodeRepMetaContext,
  decodeRepServer,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  GREETING_BYTES,
  HANDSHAKE_FLAG,
  IHAVEOPT,
  INFO,
  isErrorReply,
  NBD_MAGIC,
  OPT,
  OPTION_REPLY_HEADER_BYTES,
  OPTION_REPLY_MAGIC,
  REP,
  TRANSMISSION_FLAG,
} from './protocol.js';
import type { ListenAddress } from './server.js';
import type { ClientTls } from './tls.js';
import { SocketReader } from './wire.js';

export interface ListedExport {
  name: string;
  description: string;
  /** From NBD_INFO_EXPORT; undefined when the server sent none. */
  size?: bigint;
  flags?: number;
  blockSizes?: { minimum: number; preferred: number; maximum: number };
  contexts: string[];
}


const LIST_TIMEOUT_MS = 30_000;
/** Bounds on what an untrusted server can make us hold. */
const MAX_REPLY_BYTES = NBD_MAX_STRING_BYTES + 1024;
const MAX_EXPORTS = 10_000;
const MAX_CONTEXTS = 10_000;

function failure(message: string): Qcow2Error {
  return new Qcow2Error('io', `nbd -L: ${message}`, { errno: 'EIO' });
}

/** Lists the exports of the server at `address`. */
export async function listExports(address: ListenAddress, tls?: ClientTls): Promise<ListedExport[]> {
  const socket = await open(address);
  let stream: Socket | TLSSocket = socket;
  const timer = setTimeout(() => stream.destroy(failure(`the server did not answer within ${LIST_TIMEOUT_MS / 1000} s`)), LIST_TIMEOUT_MS);
  let reader = new SocketReader(stream);
  try {
    const greeting = decodeGreeting(await reader.read(GREETING_BYTES));
    if (greeting.nbdMagic !== NBD_MAGIC || greeting.optMagic !== IHAVEOPT) throw failure('the server does not speak the newstyle NBD handshake');
    if (!(greeting.flags & HANDSHAKE_FLAG.FIXED_NEWSTYLE)) throw failure('the server does not speak the fixed newstyle handshake');
    const noZeroes = (greeting.flags & HANDSHAKE_FLAG.NO_ZEROES) !== 0;
    stream.write(encodeClientFlags(CLIENT_FLAG.FIXED_NEWSTYLE | (noZeroes ? CLIENT_FLAG.NO_ZEROES : 0)));
    const ask = async (option: number, data?: Uint8Array) => {
      stream.write(encodeOption(option, data));
      return replies(reader, option);
    };
    if (tls) {
      const answer = await ask(OPT.STARTTLS);
      const ack = answer[0];
      if (!ack || ack.type !== REP.ACK) throw failure(`the server refused TLS (${describeError(ack)})`);
      reader.detach();
      stream = await secure(socket, tls);
      reader = new SocketReader(stream);
    }
    const listing = await ask(OPT.LIST);
    const exports: ListedExport[] = [];
    for (const r of listing) {
      if (isErrorReply(r.type)) throw failure(`the server refused to list its exports (${describeError(r)})`);
      if (r.type !== REP.SERVER) continue;
      const server = decodeRepServer(r.data);
      if (!server) throw failure('the server sent a malformed export name');
      if (exports.length === MAX_EXPORTS) throw failure(`the server lists more than ${MAX_EXPORTS} exports`);
      exports.push({ ...server, contexts: [] });
    }
    const structured = (await ask(OPT.STRUCTURED_REPLY)).some((r) => r.type === REP.ACK);
    for (const e of exports) {
      for (const r of await ask(OPT.INFO, encodeInfoRequest(e.name, [INFO.BLOCK_SIZE]))) {
        if (r.type !== REP.INFO) continue;
        const info = decodeInfoReply(r.data);
        if (info?.type === INFO.EXPORT && 'size' in info) {
          e.size = info.size;
          e.flags = info.flags;
        } else if (info?.type === INFO.BLOCK_SIZE && 'minimum' in info) {
          e.blockSizes = { minimum: info.minimum, preferred: info.preferred, maximum: info.maximum };
        } else if (info?.type === INFO.DESCRIPTION && 'text' in info && e.description === '') e.description = info.text;
      }
      if (!structured) continue;
      for (const r of await ask(OPT.LIST_META_CONTEXT, encodeMetaContextRequest(e.name, []))) {
        if (r.type !== REP.META_CONTEXT) continue;
        const ctx = decodeRepMetaContext(r.data);
        if (!ctx) throw failure('the server sent a malformed metadata context');
        if (e.contexts.length === MAX_CONTEXTS) throw failure(`the server lists more than ${MAX_CONTEXTS} metadata contexts`);
        e.contexts.push(ctx.name);
      }
    }
    // NBD_OPT_ABORT: the server may answer ACK or just close; either ends the session.
    stream.write(encodeOption(OPT.ABORT));
    return exports;
  } catch (err) {
    if (err instanceof Qcow2Error) throw err;
    throw failure((err as Error).message);
  } finally {
    clearTimeout(timer);
    reader.detach();
    stream.end();
    stream.destroy();
  }
}

interface OptionReply {
  type: number;
  data: Uint8Array;
}

/** The replies to one option, up to the one that ends it (ACK, an error, or INFO's and LIST's last). */
async function replies(reader: SocketReader, option: number): Promise<OptionReply[]> {
  const out: OptionReply[] = [];
  for (;;) {
    const h = decodeOptionReplyHeader(await reader.read(OPTION_REPLY_HEADER_BYTES));
    if (h.magic !== OPTION_REPLY_MAGIC) throw failure('the server sent an option reply with a bad magic number');
    if (h.option !== option) throw failure(`the server answered option ${h.option} when asked ${option}`);
    if (h.length > MAX_REPLY_BYTES) throw failure(`the server sent a ${h.length}-byte option reply`);
    const reply = { type: h.type, data: h.length > 0 ? Uint8Array.from(await reader.read(h.length)) : new Uint8Array(0) };
    out.push(reply);
    if (h.type === REP.ACK || isErrorReply(h.type)) return out;
    if (out.length > MAX_EXPORTS + MAX_CONTEXTS) throw failure('the server sent too many option replies');
  }
}

function describeError(r: OptionReply | undefined): string {
  if (!r) return 'no reply';
  const text = new TextDecoder().decode(r.data);
  return `reply type 0x${r.type.toString(16)}${text ? `: ${text}` : ''}`;
}

function open(address: ListenAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = address.kind === 'unix' ? netConnect(address.path) : netConnect(address.port, address.host);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      socket.on('error', () => {}); // later errors surface through the reader
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => reject(failure(`cannot connect to ${describe(address)}: ${err.code ?? err.message}`)));
  });
}

function describe(address: ListenAddress): string {
  return address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
}

function secure(socket: Socket, tls: ClientTls): Promise<TLSSocket> {
  const options: ConnectionOptions =
    tls.kind === 'x509'
      ? {
          socket,
          ca: tls.ca,
          ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
          // The certificate must name the host we asked for when we know one; a unix socket has none.
          ...(tls.servername ? { servername: tls.servername } : { checkServerIdentity: () => undefined }),
        }
      : { socket, pskCallback: () => ({ identity: tls.identity, psk: tls.key }), ciphers: 'PSK', maxVersion: 'TLSv1.2', checkServerIdentity: () => undefined };
  return new Promise((resolve, reject) => {
    const s = tlsConnect(options);
    s.once('secureConnect', () => {
      s.removeAllListeners('error');
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', (err: Error) => reject(failure(`TLS: ${err.message.split('\n')[0]}`)));
  });
}

/** The flag names qemu-nbd -L prints, by bit. */
const FLAG_NAMES: Array<[number, string]> = [
  [TRANSMISSION_FLAG.READ_ONLY, 'readonly'],
  [TRANSMISSION_FLAG.SEND_FLUSH, 'flush'],
  [TRANSMISSION_FLAG.SEND_FUA, 'fua'],
  [TRANSMISSION_FLAG.ROTATIONAL, 'rotational'],
  [TRANSMISSION_FLAG.SEND_TRIM, 'trim'],
  [TRANSMISSION_FLAG.SEND_WRITE_ZEROES, 'zeroes'],
  [TRANSMISSION_FLAG.SEND_DF, 'df'],
  [TRANSMISSION_FLAG.CAN_MULTI_CONN, 'multi'],
  [TRANSMISSION_FLAG.SEND_RESIZE, 'resize'],
  [TRANSMISSION_FLAG.SEND_CACHE, 'cache'],
  [TRANSMISSION_FLAG.SEND_FAST_ZERO, 'fast-zero'],
];

/** The listing as qemu-nbd -L prints it. */
export function formatListing(exports: readonly ListedExport[]): string {
  const lines = [`exports available: ${exports.length}`];
  for (const e of exports) {
    lines.push(` export: '${e.name}'`);
    if (e.description) lines.push(`  description: ${e.description}`);
    if (e.size !== undefined && e.flags !== undefined && e.flags & TRANSMISSION_FLAG.HAS_FLAGS) {
      lines.push(`  size:  ${e.size}`);
      const names = FLAG_NAMES.filter(([bit]) => (e.flags! & bit) !== 0).map(([, n]) => ` ${n}`).join('');
      lines.push(`  flags: 0x${e.flags.toString(16)} (${names} )`);
    }
    if (e.blockSizes && e.blockSizes.minimum) {
      lines.push(`  min block: ${e.blockSizes.minimum}`, `  opt block: ${e.blockSizes.preferred}`, `  max block: ${e.blockSizes.maximum}`);
    }
    if (e.contexts.length > 0) {
      lines.push(`  available meta contexts: ${e.contexts.length}`);
      for (const c of e.contexts) lines.push(`   ${c}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
