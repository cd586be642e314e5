/**
 * The fixed newstyle handshake, server side (NetworkBlockDevice/nbd doc/proto.md, "Handshake").
 *
 * Options answered:
 * - NBD_OPT_GO, NBD_OPT_INFO: NBD_INFO_EXPORT (size, transmission flags), NBD_INFO_BLOCK_SIZE
 *   (always: minimum 1, so clients that did not ask are not constrained), NBD_INFO_NAME and
 *   NBD_INFO_DESCRIPTION when asked; an unknown export is NBD_REP_ERR_UNKNOWN.
 * - NBD_OPT_EXPORT_NAME: the old way in (size, flags, 124 zero bytes unless NO_ZEROES); an
 *   unknown name closes the connection, as the spec requires (this option cannot fail politely).
 * - NBD_OPT_LIST: one NBD_REP_SERVER (name and description). NBD_OPT_ABORT: NBD_REP_ACK, then the
 *   connection is closed.
 * - NBD_OPT_STRUCTURED_REPLY: NBD_REP_ACK (once; again is NBD_REP_ERR_INVALID).
 * - NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT (after structured replies):
 *   `base:allocation`, and `qemu:allocation-depth` when the export offers it. `base:` and `qemu:`
 *   list a namespace's contexts (and select nothing), unknown namespaces and leaves are ignored,
 *   `qemu:dirty-bitmap:NAME` finds nothing (no bitmap is exported yet).
 * - NBD_OPT_STARTTLS: without TLS credentials, NBD_REP_ERR_POLICY (the spec's NOTLS mode). With
 *   them (the spec's FORCEDTLS mode): before STARTTLS every option but STARTTLS and ABORT is
 *   NBD_REP_ERR_TLS_REQD and NBD_OPT_EXPORT_NAME closes the connection, so neither the export's
 *   name, size nor data reach a client without TLS; STARTTLS is answered NBD_REP_ACK, the socket
 *   is upgraded (`HandshakeTls.start`) and option haggling goes on over TLS; a second STARTTLS is
 *   NBD_REP_ERR_INVALID.
 * - Anything else (NBD_OPT_EXTENDED_HEADERS included): NBD_REP_ERR_UNSUP.
 * Malformed option data is NBD_REP_ERR_INVALID; data over NBD_MAX_OPTION_BYTES is read and dropped
 * in bounded chunks and answered NBD_REP_ERR_TOO_BIG. A wrong option magic or unknown client flags
 * end the connection (the spec: the server MUST drop it).
 *
 * A connection over the server's limit (`-e N`) is refused politely: every option but ABORT gets
 * NBD_REP_ERR_POLICY with a message saying why.
 */
import { NBD_MAX_OPTION_BYTES } from '../limits.js';
import {
  type BlockSizes,
  CLIENT_FLAG,
  CONTEXT,
  decodeClientFlags,
  type Decoded,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeString,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeOptionReply,
  encodeRepMetaContext,
  encodeRepServer,
  HANDSHAKE_FLAG,
  IHAVEOPT,
  INFO,
  limitString,
  OPT,
  OPTION_HEADER_BYTES,
  REP,
} from './protocol.js';

/** What the handshake needs of the connection: exact reads, skips, writes. */
export interface HandshakeIO {
  read(n: number): Promise<Uint8Array>;
  skip(n: number): Promise<void>;
  write(bytes: Uint8Array): void;
}

/** The one export a server offers. */
export interface ExportSpec {
  name: string;
  description: string;
  size: number;
  /** The transmission flags for a client with (or without) structured replies. */
  flags(structured: boolean): number;
  blockSizes: BlockSizes;
  /** The metadata contexts offered, in id order (the first has id 1). */
  contexts: readonly string[];
}

export interface SelectedContext {
  id: number;
  name: string;
}

export type HandshakeOutcome =
  | {
      kind: 'transmission';
      via: 'go' | 'export-name';
      structured: boolean;
      /** Meta contexts the client selected (empty without NBD_OPT_SET_META_CONTEXT). */
      contexts: SelectedContext[];
      flags: number;
    }
  | { kind: 'closed'; reason: string };

/** TLS is required: how to upgrade the connection once NBD_OPT_STARTTLS is acknowledged. */
export interface HandshakeTls {
  /**
   * Runs the TLS handshake over the connection (after the ACK is written) and returns the
   * handshake's IO over TLS; rejects when TLS cannot be set up (the connection is then dropped).
   */
  start(): Promise<HandshakeIO>;
}

export interface HandshakeOptions {
  /** With TLS credentials: TLS is required before anything else is answered. */
  tls?: HandshakeTls;
  /** Refuse this client politely: the message of every NBD_REP_ERR_POLICY. */
  refuse?: string;
  /** Called for each option received (verbose logs). */
  onOption?: (option: number, length: number) => void;
}

const OPTION_NAMES: Record<number, string> = Object.fromEntries(Object.entries(OPT).map(([k, v]) => [v, `NBD_OPT_${k}`]));

export function optionName(option: number): string {
  return OPTION_NAMES[option] ?? `option ${option}`;
}

/**
 * The contexts of `available` that `queries` find. LIST: no query lists all, and a namespace
 * alone (`base:`, `qemu:`) lists that namespace's; SET: only full names select.
 */
export function matchContexts(queries: readonly string[], available: readonly string[], list: boolean): string[] {
  if (list && queries.length === 0) return [...available];
  const found = new Set<string>();
  for (const q of queries) {
    const colon = q.indexOf(':');
    if (colon <= 0) continue;
    const namespace = q.slice(0, colon + 1);
    const leaf = q.slice(colon + 1);
    if (leaf === '') {
      if (list) for (const a of available) if (a.startsWith(namespace)) found.add(a);
      continue;
    }
    // qemu:dirty-bitmap: with no name lists the exported bitmaps, and selects none (as QEMU).
    if (q === CONTEXT.DIRTY_BITMAP_PREFIX) {
      if (list) for (const a of available) if (a.startsWith(q)) found.add(a);
      continue;
    }
    if (available.includes(q)) found.add(q);
  }
  return [...found];
}

export async function negotiate(plainIO: HandshakeIO, exp: ExportSpec, opts: HandshakeOptions = {}): Promise<HandshakeOutcome> {
  let io = plainIO;
  let secured = false;
  io.write(encodeGreeting(HANDSHAKE_FLAG.FIXED_NEWSTYLE | HANDSHAKE_FLAG.NO_ZEROES));
  const clientFlags = decodeClientFlags(await io.read(4));
  if ((clientFlags & ~(CLIENT_FLAG.FIXED_NEWSTYLE | CLIENT_FLAG.NO_ZEROES)) !== 0) {
    return { kind: 'closed', reason: `unknown client flags 0x${clientFlags.toString(16)}` };
  }
  const noZeroes = (clientFlags & CLIENT_FLAG.NO_ZEROES) !== 0;
  let structured = false;
  let contexts: SelectedContext[] = [];

  const reply = (option: number, type: number, data?: Uint8Array) => io.write(encodeOptionReply(option, type, data));
  const fail = (option: number, type: number, message: string) => reply(option, type, limitString(message));
  const contextId = (name: string) => exp.contexts.indexOf(name) + 1;
  /** A decoded request that names an export: a malformed one, or one naming another export, fails its option. */
  const forExport = <T extends { name: string }>(option: number, req: Decoded<T>): T | undefined => {
    if (!req.ok) fail(option, REP.ERR_INVALID, req.error);
    else if (req.value.name !== exp.name) fail(option, REP.ERR_UNKNOWN, `export '${req.value.name}' not present`);
    else return req.value;
    return undefined;
  };

  for (;;) {
    const header = decodeOptionHeader(await io.read(OPTION_HEADER_BYTES));
    if (header.magic !== IHAVEOPT) return { kind: 'closed', reason: 'bad option magic' };
    const { option, length } = header;
    opts.onOption?.(option, length);
    if (length > NBD_MAX_OPTION_BYTES) {
      await io.skip(length);
      if (option === OPT.EXPORT_NAME) return { kind: 'closed', reason: 'export name too long' };
      fail(option, REP.ERR_TOO_BIG, `option data of ${length} bytes is larger than the largest this server takes (${NBD_MAX_OPTION_BYTES})`);
      continue;
    }
    const data = await io.read(length);

    if (option === OPT.ABORT) {
      reply(option, REP.ACK);
      return { kind: 'closed', reason: 'client aborted the handshake' };
    }
    if (opts.refuse !== undefined) {
      if (option === OPT.EXPORT_NAME) return { kind: 'closed', reason: 'refused' };
      fail(option, REP.ERR_POLICY, opts.refuse);
      continue;
    }
    if (opts.tls !== undefined && !secured) {
      if (option === OPT.STARTTLS && length === 0) {
        reply(option, REP.ACK);
        io = await opts.tls.start();
        secured = true;
        continue;
      }
      if (option === OPT.STARTTLS) fail(option, REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
      else if (option === OPT.EXPORT_NAME) return { kind: 'closed', reason: 'NBD_OPT_EXPORT_NAME without TLS (TLS is required)' };
      else fail(option, REP.ERR_TLS_REQD, 'TLS is required on this server: send NBD_OPT_STARTTLS first');
      continue;
    }

    switch (option) {
      case OPT.EXPORT_NAME: {
        const name = decodeString(data);
        if (name !== exp.name) return { kind: 'closed', reason: `unknown export '${name ?? '(invalid name)'}'` };
        const flags = exp.flags(structured);
        io.write(encodeExportNameReply(exp.size, flags, noZeroes));
        return { kind: 'transmission', via: 'export-name', structured, contexts, flags };
      }
      case OPT.LIST:
        if (length !== 0) {
          fail(option, REP.ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        reply(option, REP.SERVER, encodeRepServer(exp.name, exp.description));
        reply(option, REP.ACK);
        break;
      case OPT.STARTTLS:
        if (length !== 0) fail(option, REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
        else if (secured) fail(option, REP.ERR_INVALID, 'TLS is already negotiated');
        else fail(option, REP.ERR_POLICY, 'TLS is not enabled on this server');
        break;
      case OPT.STRUCTURED_REPLY:
        if (length !== 0) fail(option, REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        else if (structured) fail(option, REP.ERR_INVALID, 'structured replies are already negotiated');
        else {
          structured = true;
          reply(option, REP.ACK);
        }
        break;
      case OPT.INFO:
      case OPT.GO: {
        const req = forExport(option, decodeInfoRequest(data));
        if (req === undefined) break;
        const flags = exp.flags(structured);
        reply(option, REP.INFO, encodeInfoExport(exp.size, flags));
        if (req.requests.includes(INFO.NAME)) reply(option, REP.INFO, encodeInfoString(INFO.NAME, exp.name));
        if (req.requests.includes(INFO.DESCRIPTION) && exp.description !== '') {
          reply(option, REP.INFO, encodeInfoString(INFO.DESCRIPTION, exp.description));
        }
        reply(option, REP.INFO, encodeInfoBlockSize(exp.blockSizes));
        reply(option, REP.ACK);
        if (option === OPT.GO) return { kind: 'transmission', via: 'go', structured, contexts, flags };
        break;
      }
      case OPT.LIST_META_CONTEXT:
      case OPT.SET_META_CONTEXT: {
        const set = option === OPT.SET_META_CONTEXT;
        // The spec: a SET replaces the selection, even when it fails.
        if (set) contexts = [];
        if (!structured) {
          fail(option, REP.ERR_INVALID, 'structured replies must be negotiated first');
          break;
        }
        const req = forExport(option, decodeMetaContextRequest(data));
        if (req === undefined) break;
        const names = matchContexts(req.queries, exp.contexts, !set);
        for (const name of names) reply(option, REP.META_CONTEXT, encodeRepMetaContext(set ? contextId(name) : 0, name));
        reply(option, REP.ACK);
        // Only the one export's name gets this far: the selection holds for the GO that follows.
        if (set) contexts = names.map((name) => ({ id: contextId(name), name }));
        break;
      }
      default:
        fail(option, REP.ERR_UNSUP, `${optionName(option)} is not supported`);
    }
  }
}

