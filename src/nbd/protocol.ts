/**
 * The NBD protocol's wire format (NetworkBlockDevice/nbd doc/proto.md): constants, and pure
 * encoders and decoders for the fixed newstyle handshake, options and option replies, the info
 * types, the 28-byte request header, the simple reply and the structured reply chunks. Bytes in,
 * values out and back; no I/O. All numbers are big-endian ("network byte order").
 *
 * 64-bit fields that may exceed 2^53 (magics, cookies, request offsets) are bigints; export sizes
 * and reply offsets we send are numbers (our disks are at most 2^53 - 1 bytes).
 */
import type { Errno } from '../errors.js';
import { NBD_MAX_STRING_BYTES } from '../limits.js';

// ---------------------------------------------------------------------------------------------
// Magic numbers
// ---------------------------------------------------------------------------------------------

/** 'NBDMAGIC': the first 8 bytes the server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': the newstyle magic, after NBDMAGIC and before every option the client sends. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Before every option reply. */
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
/** The 64-bit request header of the extended headers extension (not negotiated by us). */
export const EXTENDED_REQUEST_MAGIC = 0x21e41c71;

// ---------------------------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------------------------

/** Handshake flags (16 bits, server to client). */
export const HANDSHAKE_FLAG = { FIXED_NEWSTYLE: 1 << 0, NO_ZEROES: 1 << 1 } as const;
/** Client flags (32 bits, client to server). */
export const CLIENT_FLAG = { FIXED_NEWSTYLE: 1 << 0, NO_ZEROES: 1 << 1 } as const;

/** Transmission flags (16 bits): what the export supports. */
export const TRANSMISSION_FLAG = {
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
  BLOCK_STAT_PAYLOAD: 1 << 12,
} as const;

export const OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

const REP_ERR = 2 ** 31;
export const REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: REP_ERR + 1,
  ERR_POLICY: REP_ERR + 2,
  ERR_INVALID: REP_ERR + 3,
  ERR_PLATFORM: REP_ERR + 4,
  ERR_TLS_REQD: REP_ERR + 5,
  ERR_UNKNOWN: REP_ERR + 6,
  ERR_SHUTDOWN: REP_ERR + 7,
  ERR_BLOCK_SIZE_REQD: REP_ERR + 8,
  ERR_TOO_BIG: REP_ERR + 9,
  ERR_EXT_HEADER_REQD: REP_ERR + 10,
} as const;

export function isErrorReply(type: number): boolean {
  return type >= REP_ERR;
}

/** Information types of NBD_OPT_INFO / NBD_OPT_GO (NBD_REP_INFO). */
export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** The metadata contexts we know (qemu's namespace: qemu.org docs/interop/nbd.txt). */
export const CONTEXT = {
  BASE_ALLOCATION: 'base:allocation',
  ALLOCATION_DEPTH: 'qemu:allocation-depth',
  DIRTY_BITMAP_PREFIX: 'qemu:dirty-bitmap:',
} as const;

/** base:allocation's flags. */
export const STATE = { HOLE: 1 << 0, ZERO: 1 << 1 } as const;
/** qemu:dirty-bitmap:NAME's flag: the range is dirty (NBD_STATE_DIRTY). */
export const STATE_DIRTY = 1 << 0;

// ---------------------------------------------------------------------------------------------
// Transmission
// ---------------------------------------------------------------------------------------------

export const CMD = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
  RESIZE: 8,
} as const;

export const CMD_FLAG = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
  PAYLOAD_LEN: 1 << 5,
} as const;

export const REPLY_FLAG_DONE = 1 << 0;

export const REPLY_TYPE = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  BLOCK_STATUS_EXT: 6,
  ERROR: 2 ** 15 + 1,
  ERROR_OFFSET: 2 ** 15 + 2,
} as const;

/** The error values of replies: the spec allows only these. */
export const NBD_ERROR = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;

/**
 * The NBD error value of an errno. Besides the eight the spec defines: EDQUOT and EFBIG are
 * ENOSPC (the spec says so), EROFS and EACCES are EPERM (the export may not be written), and
 * what else a file can fail with (ENOENT, EBADF) is EIO.
 */
export function nbdError(errno: Errno): number {
  switch (errno) {
    case 'EPERM':
    case 'EROFS':
    case 'EACCES':
      return NBD_ERROR.EPERM;
    case 'ENOMEM':
      return NBD_ERROR.ENOMEM;
    case 'EINVAL':
      return NBD_ERROR.EINVAL;
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return NBD_ERROR.ENOSPC;
    case 'EOVERFLOW':
      return NBD_ERROR.EOVERFLOW;
    case 'ENOTSUP':
      return NBD_ERROR.ENOTSUP;
    case 'ESHUTDOWN':
      return NBD_ERROR.ESHUTDOWN;
    case 'EIO':
    case 'ENOENT':
    case 'EBADF':
      return NBD_ERROR.EIO;
  }
}

export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_BYTES = 16;
export const CHUNK_HEADER_BYTES = 20;
export const OPTION_HEADER_BYTES = 16;
export const OPTION_REPLY_HEADER_BYTES = 20;
export const GREETING_BYTES = 18;

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeString(text: string): Uint8Array {
  return utf8.encode(text);
}

/** A protocol string: valid UTF-8, no NUL, at most 4096 bytes; undefined when it is not one. */
export function decodeString(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength > NBD_MAX_STRING_BYTES || bytes.includes(0)) return undefined;
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** `text` cut to the spec's string limit (whole UTF-8 characters). */
export function limitString(text: string): Uint8Array {
  let bytes = utf8.encode(text);
  if (bytes.byteLength <= NBD_MAX_STRING_BYTES) return bytes;
  let end = NBD_MAX_STRING_BYTES;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  bytes = bytes.subarray(0, end);
  return bytes;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Handshake messages
// ---------------------------------------------------------------------------------------------

/** S: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
export function encodeGreeting(handshakeFlags: number): Uint8Array {
  const out = new Uint8Array(GREETING_BYTES);
  const v = view(out);
  v.setBigUint64(0, NBD_MAGIC);
  v.setBigUint64(8, IHAVEOPT);
  v.setUint16(16, handshakeFlags);
  return out;
}

export function decodeGreeting(bytes: Uint8Array): { nbdMagic: bigint; optMagic: bigint; flags: number } {
  const v = view(bytes);
  return { nbdMagic: v.getBigUint64(0), optMagic: v.getBigUint64(8), flags: v.getUint16(16) };
}

/** C: 32-bit client flags. */
export function encodeClientFlags(flags: number): Uint8Array {
  const out = new Uint8Array(4);
  view(out).setUint32(0, flags);
  return out;
}

export function decodeClientFlags(bytes: Uint8Array): number {
  return view(bytes).getUint32(0);
}

export interface OptionHeader {
  magic: bigint;
  option: number;
  length: number;
}

/** C: IHAVEOPT, 32-bit option, 32-bit length (the data follows). */
export function encodeOption(option: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(OPTION_HEADER_BYTES + data.byteLength);
  const v = view(out);
  v.setBigUint64(0, IHAVEOPT);
  v.setUint32(8, option);
  v.setUint32(12, data.byteLength);
  out.set(data, OPTION_HEADER_BYTES);
  return out;
}

export function decodeOptionHeader(bytes: Uint8Array): OptionHeader {
  const v = view(bytes);
  return { magic: v.getBigUint64(0), option: v.getUint32(8), length: v.getUint32(12) };
}

export interface OptionReplyHeader {
  magic: bigint;
  option: number;
  type: number;
  length: number;
}

/** S: reply magic, the option, the reply type, 32-bit length, data. */
export function encodeOptionReply(option: number, type: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(OPTION_REPLY_HEADER_BYTES + data.byteLength);
  const v = view(out);
  v.setBigUint64(0, OPTION_REPLY_MAGIC);
  v.setUint32(8, option);
  v.setUint32(12, type);
  v.setUint32(16, data.byteLength);
  out.set(data, OPTION_REPLY_HEADER_BYTES);
  return out;
}

export function decodeOptionReplyHeader(bytes: Uint8Array): OptionReplyHeader {
  const v = view(bytes);
  return { magic: v.getBigUint64(0), option: v.getUint32(8), type: v.getUint32(12), length: v.getUint32(16) };
}

/** NBD_REP_SERVER's data: 32-bit name length, name, then a description for humans. */
export function encodeRepServer(name: string, description = ''): Uint8Array {
  const n = encodeString(name);
  const d = limitString(description);
  const out = new Uint8Array(4 + n.byteLength + d.byteLength);
  view(out).setUint32(0, n.byteLength);
  out.set(n, 4);
  out.set(d, 4 + n.byteLength);
  return out;
}

export function decodeRepServer(data: Uint8Array): { name: string; description: string } | undefined {
  if (data.byteLength < 4) return undefined;
  const len = view(data).getUint32(0);
  if (len > data.byteLength - 4) return undefined;
  const name = decodeString(data.subarray(4, 4 + len));
  const description = decodeString(data.subarray(4 + len));
  return name === undefined || description === undefined ? undefined : { name, description };
}

/** NBD_REP_META_CONTEXT's data: 32-bit context id, the name. */
export function encodeRepMetaContext(id: number, name: string): Uint8Array {
  const n = encodeString(name);
  const out = new Uint8Array(4 + n.byteLength);
  view(out).setUint32(0, id);
  out.set(n, 4);
  return out;
}

export function decodeRepMetaContext(data: Uint8Array): { id: number; name: string } | undefined {
  if (data.byteLength < 4) return undefined;
  const name = decodeString(data.subarray(4));
  return name === undefined ? undefined : { id: view(data).getUint32(0), name };
}

/** NBD_INFO_EXPORT: 16-bit type, 64-bit size, 16-bit transmission flags (12 bytes). */
export function encodeInfoExport(size: number, flags: number): Uint8Array {
  const out = new Uint8Array(12);
  const v = view(out);
  v.setUint16(0, INFO.EXPORT);
  v.setBigUint64(2, BigInt(size));
  v.setUint16(10, flags);
  return out;
}

/** NBD_INFO_NAME / NBD_INFO_DESCRIPTION: 16-bit type, the string. */
export function encodeInfoString(type: typeof INFO.NAME | typeof INFO.DESCRIPTION, text: string): Uint8Array {
  const s = limitString(text);
  const out = new Uint8Array(2 + s.byteLength);
  view(out).setUint16(0, type);
  out.set(s, 2);
  return out;
}

export interface BlockSizes {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** NBD_INFO_BLOCK_SIZE: 16-bit type, minimum, preferred, maximum (32 bits each; 14 bytes). */
export function encodeInfoBlockSize(sizes: BlockSizes): Uint8Array {
  const out = new Uint8Array(14);
  const v = view(out);
  v.setUint16(0, INFO.BLOCK_SIZE);
  v.setUint32(2, sizes.minimum);
  v.setUint32(6, sizes.preferred);
  v.setUint32(10, sizes.maximum);
  return out;
}

export type InfoReply =
  | { type: typeof INFO.EXPORT; size: bigint; flags: number }
  | { type: typeof INFO.NAME | typeof INFO.DESCRIPTION; text: string }
  | ({ type: typeof INFO.BLOCK_SIZE } & BlockSizes)
  | { type: number; unknown: Uint8Array };

/** An NBD_REP_INFO's data; undefined when its length does not fit its type. */
export function decodeInfoReply(data: Uint8Array): InfoReply | undefined {
  if (data.byteLength < 2) return undefined;
  const v = view(data);
  const type = v.getUint16(0);
  switch (type) {
    case INFO.EXPORT:
      return data.byteLength === 12 ? { type, size: v.getBigUint64(2), flags: v.getUint16(10) } : undefined;
    case INFO.NAME:
    case INFO.DESCRIPTION: {
      const text = decodeString(data.subarray(2));
      return text === undefined ? undefined : { type, text };
    }
    case INFO.BLOCK_SIZE:
      return data.byteLength === 14 ? { type, minimum: v.getUint32(2), preferred: v.getUint32(6), maximum: v.getUint32(10) } : undefined;
    default:
      return { type, unknown: data.subarray(2) };
  }
}

/** The reply to NBD_OPT_EXPORT_NAME: 64-bit size, 16-bit flags, and 124 zero bytes unless NO_ZEROES. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Uint8Array {
  const out = new Uint8Array(noZeroes ? 10 : 134);
  const v = view(out);
  v.setBigUint64(0, BigInt(size));
  v.setUint16(8, flags);
  return out;
}

/** NBD_OPT_INFO / NBD_OPT_GO data: 32-bit name length, name, 16-bit count, 16-bit info types. */
export function encodeInfoRequest(name: string, requests: readonly number[]): Uint8Array {
  const n = encodeString(name);
  const out = new Uint8Array(4 + n.byteLength + 2 + 2 * requests.length);
  const v = view(out);
  v.setUint32(0, n.byteLength);
  out.set(n, 4);
  v.setUint16(4 + n.byteLength, requests.length);
  requests.forEach((r, i) => v.setUint16(6 + n.byteLength + 2 * i, r));
  return out;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

export function decodeInfoRequest(data: Uint8Array): Decoded<{ name: string; requests: number[] }> {
  if (data.byteLength < 6) return { ok: false, error: 'option data too short' };
  const v = view(data);
  const len = v.getUint32(0);
  if (len > data.byteLength - 6) return { ok: false, error: 'export name longer than the option' };
  const name = decodeString(data.subarray(4, 4 + len));
  if (name === undefined) return { ok: false, error: 'export name is not a valid string' };
  const count = v.getUint16(4 + len);
  if (data.byteLength !== 6 + len + 2 * count) return { ok: false, error: 'information request count does not match the option length' };
  const requests: number[] = [];
  for (let i = 0; i < count; i++) requests.push(v.getUint16(6 + len + 2 * i));
  return { ok: true, value: { name, requests } };
}

/** NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data: export name, then counted queries. */
export function encodeMetaContextRequest(name: string, queries: readonly string[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = encodeString(name);
  const head = new Uint8Array(4);
  view(head).setUint32(0, n.byteLength);
  const count = new Uint8Array(4);
  view(count).setUint32(0, queries.length);
  parts.push(head, n, count);
  for (const q of queries) {
    const s = encodeString(q);
    const len = new Uint8Array(4);
    view(len).setUint32(0, s.byteLength);
    parts.push(len, s);
  }
  return concat(parts);
}

export function decodeMetaContextRequest(data: Uint8Array): Decoded<{ name: string; queries: string[] }> {
  const v = view(data);
  let at = 0;
  const take = (what: string): Decoded<string> => {
    if (data.byteLength - at < 4) return { ok: false, error: `${what}: option data too short` };
    const len = v.getUint32(at);
    at += 4;
    if (len > data.byteLength - at) return { ok: false, error: `${what} longer than the option` };
    const text = decodeString(data.subarray(at, at + len));
    at += len;
    return text === undefined ? { ok: false, error: `${what} is not a valid string` } : { ok: true, value: text };
  };
  const name = take('export name');
  if (!name.ok) return name;
  if (data.byteLength - at < 4) return { ok: false, error: 'query count missing' };
  const count = v.getUint32(at);
  at += 4;
  // Each query takes at least 4 bytes: a count the data cannot hold is refused before any loop.
  if (count > (data.byteLength - at) / 4) return { ok: false, error: 'query count does not match the option length' };
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    const q = take('query');
    if (!q.ok) return q;
    queries.push(q.value);
  }
  if (at !== data.byteLength) return { ok: false, error: 'trailing bytes after the queries' };
  return { ok: true, value: { name: name.value, queries } };
}

// ---------------------------------------------------------------------------------------------
// Transmission messages
// ---------------------------------------------------------------------------------------------

export interface RequestHeader {
  magic: number;
  /** Command flags (CMD_FLAG). */
  flags: number;
  /** Command (CMD). */
  type: number;
  /** The client's handle for this request, sent back in every reply to it. */
  cookie: bigint;
  offset: bigint;
  length: number;
}

/** C: magic, 16-bit flags, 16-bit type, 64-bit cookie, 64-bit offset, 32-bit length (28 bytes). */
export function encodeRequest(req: Omit<RequestHeader, 'magic'> & { magic?: number }): Uint8Array {
  const out = new Uint8Array(REQUEST_HEADER_BYTES);
  const v = view(out);
  v.setUint32(0, req.magic ?? REQUEST_MAGIC);
  v.setUint16(4, req.flags);
  v.setUint16(6, req.type);
  v.setBigUint64(8, req.cookie);
  v.setBigUint64(16, req.offset);
  v.setUint32(24, req.length);
  return out;
}

export function decodeRequest(bytes: Uint8Array): RequestHeader {
  const v = view(bytes);
  return {
    magic: v.getUint32(0),
    flags: v.getUint16(4),
    type: v.getUint16(6),
    cookie: v.getBigUint64(8),
    offset: v.getBigUint64(16),
    length: v.getUint32(24),
  };
}

/** S: magic, 32-bit error, 64-bit cookie (16 bytes; a successful read's data follows). */
export function encodeSimpleReply(error: number, cookie: bigint): Uint8Array {
  const out = new Uint8Array(SIMPLE_REPLY_BYTES);
  const v = view(out);
  v.setUint32(0, SIMPLE_REPLY_MAGIC);
  v.setUint32(4, error);
  v.setBigUint64(8, cookie);
  return out;
}

export function decodeSimpleReply(bytes: Uint8Array): { magic: number; error: number; cookie: bigint } {
  const v = view(bytes);
  return { magic: v.getUint32(0), error: v.getUint32(4), cookie: v.getBigUint64(8) };
}

export interface ChunkHeader {
  magic: number;
  flags: number;
  type: number;
  cookie: bigint;
  length: number;
}

/** S: magic, 16-bit flags, 16-bit type, 64-bit cookie, 32-bit payload length (20 bytes). */
export function encodeChunkHeader(flags: number, type: number, cookie: bigint, length: number, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(CHUNK_HEADER_BYTES);
  const v = view(out);
  v.setUint32(0, STRUCTURED_REPLY_MAGIC);
  v.setUint16(4, flags);
  v.setUint16(6, type);
  v.setBigUint64(8, cookie);
  v.setUint32(16, length);
  return out;
}

export function decodeChunkHeader(bytes: Uint8Array): ChunkHeader {
  const v = view(bytes);
  return { magic: v.getUint32(0), flags: v.getUint16(4), type: v.getUint16(6), cookie: v.getBigUint64(8), length: v.getUint32(16) };
}

/** NBD_REPLY_TYPE_NONE with DONE: the end of a structured reply. */
export function encodeNoneChunk(cookie: bigint): Uint8Array {
  return encodeChunkHeader(REPLY_FLAG_DONE, REPLY_TYPE.NONE, cookie, 0);
}

/**
 * The chunk header and the 64-bit offset of an NBD_REPLY_TYPE_OFFSET_DATA chunk (28 bytes); its
 * `dataLength` bytes of data follow (sent separately: they are not copied).
 */
export function encodeOffsetDataHead(flags: number, cookie: bigint, offset: number, dataLength: number): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER_BYTES + 8);
  encodeChunkHeader(flags, REPLY_TYPE.OFFSET_DATA, cookie, 8 + dataLength, out);
  view(out).setBigUint64(CHUNK_HEADER_BYTES, BigInt(offset));
  return out;
}

/** NBD_REPLY_TYPE_OFFSET_HOLE: 64-bit offset, 32-bit hole size (32 bytes with the header). */
export function encodeOffsetHole(flags: number, cookie: bigint, offset: number, size: number): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER_BYTES + 12);
  encodeChunkHeader(flags, REPLY_TYPE.OFFSET_HOLE, cookie, 12, out);
  const v = view(out);
  v.setBigUint64(CHUNK_HEADER_BYTES, BigInt(offset));
  v.setUint32(CHUNK_HEADER_BYTES + 8, size);
  return out;
}

export interface StatusDescriptor {
  /** 32 bits, nonzero. */
  length: number;
  /** The context's flags (base:allocation: STATE; qemu:allocation-depth: the depth). */
  flags: number;
}

/** NBD_REPLY_TYPE_BLOCK_STATUS: 32-bit context id, then (length, flags) descriptors. */
export function encodeBlockStatusChunk(flags: number, cookie: bigint, contextId: number, extents: readonly StatusDescriptor[]): Uint8Array {
  const payload = 4 + 8 * extents.length;
  const out = new Uint8Array(CHUNK_HEADER_BYTES + payload);
  encodeChunkHeader(flags, REPLY_TYPE.BLOCK_STATUS, cookie, payload, out);
  const v = view(out);
  v.setUint32(CHUNK_HEADER_BYTES, contextId);
  let at = CHUNK_HEADER_BYTES + 4;
  for (const e of extents) {
    v.setUint32(at, e.length);
    v.setUint32(at + 4, e.flags);
    at += 8;
  }
  return out;
}

export function decodeBlockStatusPayload(payload: Uint8Array): { contextId: number; extents: StatusDescriptor[] } | undefined {
  if (payload.byteLength < 12 || (payload.byteLength - 4) % 8 !== 0) return undefined;
  const v = view(payload);
  const extents: StatusDescriptor[] = [];
  for (let at = 4; at < payload.byteLength; at += 8) extents.push({ length: v.getUint32(at), flags: v.getUint32(at + 4) });
  return { contextId: v.getUint32(0), extents };
}

/** NBD_REPLY_TYPE_ERROR: 32-bit error, 16-bit message length, message. */
export function encodeErrorChunk(flags: number, cookie: bigint, error: number, message = ''): Uint8Array {
  const m = limitString(message);
  const payload = 6 + m.byteLength;
  const out = new Uint8Array(CHUNK_HEADER_BYTES + payload);
  encodeChunkHeader(flags, REPLY_TYPE.ERROR, cookie, payload, out);
  const v = view(out);
  v.setUint32(CHUNK_HEADER_BYTES, error);
  v.setUint16(CHUNK_HEADER_BYTES + 4, m.byteLength);
  out.set(m, CHUNK_HEADER_BYTES + 6);
  return out;
}

export function decodeErrorPayload(payload: Uint8Array): { error: number; message: string } | undefined {
  if (payload.byteLength < 6) return undefined;
  const v = view(payload);
  const len = v.getUint16(4);
  if (len > payload.byteLength - 6) return undefined;
  const message = decodeString(payload.subarray(6, 6 + len));
  return message === undefined ? undefined : { error: v.getUint32(0), message };
}
