/**
 * The NBD codec (src/nbd/protocol.ts) against bytes written out by hand from the spec
 * (NetworkBlockDevice/nbd doc/proto.md), round trips, the handshake over an in-memory stream, and
 * the pure reply builders of the transmission phase.
 */
import { describe, expect, it } from 'vitest';
import { readPieces, statusDescriptors } from '../../src/nbd/connection.js';
import { type ExportSpec, type HandshakeIO, matchContexts, negotiate } from '../../src/nbd/handshake.js';
import {
  CMD,
  CMD_FLAG,
  decodeBlockStatusPayload,
  decodeChunkHeader,
  decodeClientFlags,
  decodeErrorPayload,
  decodeGreeting,
  decodeInfoReply,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeOptionReplyHeader,
  decodeRepMetaContext,
  decodeRepServer,
  decodeRequest,
  decodeSimpleReply,
  decodeString,
  encodeBlockStatusChunk,
  encodeClientFlags,
  encodeErrorChunk,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoRequest,
  encodeInfoString,
  encodeMetaContextRequest,
  encodeNoneChunk,
  encodeOffsetDataHead,
  encodeOffsetHole,
  encodeOption,
  encodeOptionReply,
  encodeRepMetaContext,
  encodeRepServer,
  encodeRequest,
  encodeSimpleReply,
  IHAVEOPT,
  INFO,
  NBD_MAGIC,
  nbdError,
  OPT,
  OPTION_REPLY_MAGIC,
  REP,
  REPLY_FLAG_DONE,
  REPLY_TYPE,
  TRANSMISSION_FLAG,
} from '../../src/nbd/protocol.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex');
const COOKIE = 0x0102030405060708n;
const C = '0102030405060708';

describe('handshake messages', () => {
  it('greeting: NBDMAGIC, IHAVEOPT, 16-bit flags', () => {
    const g = encodeGreeting(3);
    expect(hex(g)).toBe('4e42444d41474943' + '49484156454f5054' + '0003');
    expect(hex(g).slice(0, 16)).toBe(ascii('NBDMAGIC'));
    expect(hex(g).slice(16, 32)).toBe(ascii('IHAVEOPT'));
    expect(decodeGreeting(g)).toEqual({ nbdMagic: NBD_MAGIC, optMagic: IHAVEOPT, flags: 3 });
  });

  it('client flags: 32 bits', () => {
    expect(hex(encodeClientFlags(3))).toBe('00000003');
    expect(decodeClientFlags(bytes('00000001'))).toBe(1);
  });

  it('option: IHAVEOPT, option, length, data', () => {
    const o = encodeOption(OPT.GO, bytes('aabb'));
    expect(hex(o)).toBe('49484156454f5054' + '00000007' + '00000002' + 'aabb');
    expect(decodeOptionHeader(o)).toEqual({ magic: IHAVEOPT, option: 7, length: 2 });
  });

  it('option reply: magic 0x3e889045565a9, option, type, length, data', () => {
    expect(hex(encodeOptionReply(OPT.LIST, REP.ACK))).toBe('0003e889045565a9' + '00000003' + '00000001' + '00000000');
    const err = encodeOptionReply(OPT.STARTTLS, REP.ERR_POLICY, bytes('6e6f'));
    expect(hex(err)).toBe('0003e889045565a9' + '00000005' + '80000002' + '00000002' + '6e6f');
    expect(decodeOptionReplyHeader(err)).toEqual({ magic: OPTION_REPLY_MAGIC, option: 5, type: 0x80000002, length: 2 });
    expect(REP.ERR_UNSUP).toBe(0x80000001);
    expect(REP.ERR_TOO_BIG).toBe(0x80000009);
  });

  it('NBD_REP_SERVER: name length, name, description', () => {
    const d = encodeRepServer('disk', 'desc');
    expect(hex(d)).toBe('00000004' + ascii('disk') + ascii('desc'));
    expect(decodeRepServer(d)).toEqual({ name: 'disk', description: 'desc' });
  });

  it('NBD_REP_META_CONTEXT: id, name', () => {
    const d = encodeRepMetaContext(1, 'base:allocation');
    expect(hex(d)).toBe('00000001' + ascii('base:allocation'));
    expect(decodeRepMetaContext(d)).toEqual({ id: 1, name: 'base:allocation' });
  });

  it('NBD_INFO_EXPORT: type 0, 64-bit size, 16-bit flags (12 bytes)', () => {
    const d = encodeInfoExport(0x100000, TRANSMISSION_FLAG.HAS_FLAGS | TRANSMISSION_FLAG.READ_ONLY);
    expect(hex(d)).toBe('0000' + '0000000000100000' + '0003');
    expect(decodeInfoReply(d)).toEqual({ type: INFO.EXPORT, size: 0x100000n, flags: 3 });
  });

  it('NBD_INFO_BLOCK_SIZE: type 3, minimum, preferred, maximum (14 bytes)', () => {
    const d = encodeInfoBlockSize({ minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024 });
    expect(hex(d)).toBe('0003' + '00000001' + '00001000' + '02000000');
    expect(decodeInfoReply(d)).toEqual({ type: INFO.BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 33554432 });
  });

  it('NBD_INFO_NAME and NBD_INFO_DESCRIPTION: type, string', () => {
    expect(hex(encodeInfoString(INFO.NAME, 'x'))).toBe('0001' + '78');
    expect(decodeInfoReply(encodeInfoString(INFO.DESCRIPTION, 'héllo'))).toEqual({ type: INFO.DESCRIPTION, text: 'héllo' });
  });

  it('NBD_OPT_EXPORT_NAME reply: size, flags, 124 zeros unless NO_ZEROES', () => {
    expect(hex(encodeExportNameReply(512, 1, true))).toBe('0000000000000200' + '0001');
    const full = encodeExportNameReply(512, 1, false);
    expect(full.byteLength).toBe(134);
    expect(full.subarray(10).every((b) => b === 0)).toBe(true);
  });

  it('NBD_OPT_GO data: name length, name, count, info types', () => {
    const d = encodeInfoRequest('a', [INFO.BLOCK_SIZE, INFO.NAME]);
    expect(hex(d)).toBe('00000001' + '61' + '0002' + '0003' + '0001');
    expect(decodeInfoRequest(d)).toEqual({ ok: true, value: { name: 'a', requests: [3, 1] } });
    // A count that does not match the option's length, and a name running past it.
    expect(decodeInfoRequest(bytes('00000001' + '61' + '0002' + '0003')).ok).toBe(false);
    expect(decodeInfoRequest(bytes('00000009' + '61' + '0000')).ok).toBe(false);
    expect(decodeInfoRequest(bytes('0000')).ok).toBe(false);
  });

  it('meta context data: name length, name, query count, (length, query)...', () => {
    const d = encodeMetaContextRequest('', ['base:allocation']);
    expect(hex(d)).toBe('00000000' + '00000001' + '0000000f' + ascii('base:allocation'));
    expect(decodeMetaContextRequest(d)).toEqual({ ok: true, value: { name: '', queries: ['base:allocation'] } });
    expect(decodeMetaContextRequest(encodeMetaContextRequest('e', []))).toEqual({ ok: true, value: { name: 'e', queries: [] } });
    // A huge count is refused at once (each query needs at least 4 bytes), not looped over.
    expect(decodeMetaContextRequest(bytes('00000000' + 'ffffffff')).ok).toBe(false);
    expect(decodeMetaContextRequest(bytes('00000000' + '00000001' + '00000010' + '6161')).ok).toBe(false);
    expect(decodeMetaContextRequest(bytes('00000000' + '00000000' + '00')).ok).toBe(false);
  });

  it('strings: UTF-8, no NUL, at most 4096 bytes', () => {
    expect(decodeString(bytes('6100'))).toBeUndefined();
    expect(decodeString(bytes('ff'))).toBeUndefined();
    expect(decodeString(new Uint8Array(4097).fill(0x61))).toBeUndefined();
    expect(decodeString(new Uint8Array(4096).fill(0x61))).toHaveLength(4096);
  });
});

describe('transmission messages', () => {
  it('request: magic 0x25609513, flags, type, cookie, offset, length (28 bytes)', () => {
    const r = encodeRequest({ flags: CMD_FLAG.FUA, type: CMD.WRITE, cookie: COOKIE, offset: 0x1000n, length: 512 });
    expect(hex(r)).toBe('25609513' + '0001' + '0001' + C + '0000000000001000' + '00000200');
    expect(decodeRequest(r)).toEqual({ magic: 0x25609513, flags: 1, type: 1, cookie: COOKIE, offset: 0x1000n, length: 512 });
    const big = decodeRequest(encodeRequest({ flags: 0, type: CMD.READ, cookie: 0xffffffffffffffffn, offset: 0xfffffffffffffe00n, length: 0xffffffff }));
    expect(big.offset).toBe(0xfffffffffffffe00n);
    expect(big.cookie).toBe(0xffffffffffffffffn);
    expect(big.length).toBe(0xffffffff);
  });

  it('simple reply: magic 0x67446698, error, cookie', () => {
    const r = encodeSimpleReply(5, COOKIE);
    expect(hex(r)).toBe('67446698' + '00000005' + C);
    expect(decodeSimpleReply(r)).toEqual({ magic: 0x67446698, error: 5, cookie: COOKIE });
  });

  it('NONE chunk: magic 0x668e33ef, DONE, type 0, length 0', () => {
    const c = encodeNoneChunk(COOKIE);
    expect(hex(c)).toBe('668e33ef' + '0001' + '0000' + C + '00000000');
    expect(decodeChunkHeader(c)).toEqual({ magic: 0x668e33ef, flags: REPLY_FLAG_DONE, type: REPLY_TYPE.NONE, cookie: COOKIE, length: 0 });
  });

  it('OFFSET_DATA head: length counts the offset and the data that follows', () => {
    expect(hex(encodeOffsetDataHead(0, COOKIE, 0x200, 512))).toBe('668e33ef' + '0000' + '0001' + C + '00000208' + '0000000000000200');
  });

  it('OFFSET_HOLE: offset, 32-bit size; payload length 12', () => {
    expect(hex(encodeOffsetHole(REPLY_FLAG_DONE, COOKIE, 4096, 8192))).toBe('668e33ef' + '0001' + '0002' + C + '0000000c' + '0000000000001000' + '00002000');
  });

  it('BLOCK_STATUS: context id, (length, flags) descriptors', () => {
    const c = encodeBlockStatusChunk(REPLY_FLAG_DONE, COOKIE, 1, [
      { length: 65536, flags: 3 },
      { length: 512, flags: 0 },
    ]);
    expect(hex(c)).toBe('668e33ef' + '0001' + '0005' + C + '00000014' + '00000001' + '00010000' + '00000003' + '00000200' + '00000000');
    expect(decodeBlockStatusPayload(c.subarray(20))).toEqual({
      contextId: 1,
      extents: [
        { length: 65536, flags: 3 },
        { length: 512, flags: 0 },
      ],
    });
  });

  it('ERROR chunk: type 2^15+1, error, message length, message', () => {
    const c = encodeErrorChunk(REPLY_FLAG_DONE, COOKIE, 22, 'bad');
    expect(hex(c)).toBe('668e33ef' + '0001' + '8001' + C + '00000009' + '00000016' + '0003' + ascii('bad'));
    expect(decodeErrorPayload(c.subarray(20))).toEqual({ error: 22, message: 'bad' });
  });

  it("error values: the spec's eight, and what maps onto them", () => {
    expect([nbdError('EPERM'), nbdError('EIO'), nbdError('ENOMEM'), nbdError('EINVAL')]).toEqual([1, 5, 12, 22]);
    expect([nbdError('ENOSPC'), nbdError('EOVERFLOW'), nbdError('ENOTSUP'), nbdError('ESHUTDOWN')]).toEqual([28, 75, 95, 108]);
    expect([nbdError('EDQUOT'), nbdError('EFBIG'), nbdError('EROFS'), nbdError('EACCES'), nbdError('ENOENT')]).toEqual([28, 28, 1, 1, 5]);
  });
});

describe('metadata context queries', () => {
  const both = ['base:allocation', 'qemu:allocation-depth'];
  it('LIST: no query lists all; a namespace lists its own', () => {
    expect(matchContexts([], both, true)).toEqual(both);
    expect(matchContexts(['base:'], both, true)).toEqual(['base:allocation']);
    expect(matchContexts(['qemu:'], both, true)).toEqual(['qemu:allocation-depth']);
    expect(matchContexts(['qemu:'], ['base:allocation'], true)).toEqual([]);
  });
  it('SET: full names only; unknown namespaces, leaves and bitmaps find nothing', () => {
    expect(matchContexts([], both, false)).toEqual([]);
    expect(matchContexts(['base:'], both, false)).toEqual([]);
    expect(matchContexts(['base:allocation', 'base:allocation'], both, false)).toEqual(['base:allocation']);
    expect(matchContexts(['x-foo:bar', 'nocolon', 'base:other', 'qemu:dirty-bitmap:b0', 'qemu:dirty-bitmap:'], both, false)).toEqual([]);
    expect(matchContexts(['qemu:allocation-depth'], ['base:allocation'], false)).toEqual([]);
  });
});

/** A handshake stream in memory: what the client sends, what the server wrote. */
function memoryIO(input: Uint8Array): HandshakeIO & { out: Uint8Array[] } {
  let at = 0;
  const out: Uint8Array[] = [];
  return {
    out,
    async read(n) {
      if (at + n > input.byteLength) throw new Error('end of input');
      const r = input.subarray(at, at + n);
      at += n;
      return r;
    },
    async skip(n) {
      await this.read(n);
    },
    write(b) {
      out.push(b);
    },
  };
}

const EXPORT: ExportSpec = {
  name: 'disk',
  description: 'a disk',
  size: 1 << 20,
  flags: (structured) => TRANSMISSION_FLAG.HAS_FLAGS | (structured ? TRANSMISSION_FLAG.SEND_DF : 0),
  blockSizes: { minimum: 1, preferred: 4096, maximum: 1 << 25 },
  contexts: ['base:allocation'],
};

function cat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** The option replies in the server's output after the greeting. */
function replies(out: Uint8Array[]): Array<{ option: number; type: number; data: Uint8Array }> {
  const all = cat(...out).subarray(18);
  const list: Array<{ option: number; type: number; data: Uint8Array }> = [];
  for (let at = 0; at < all.byteLength; ) {
    const h = decodeOptionReplyHeader(all.subarray(at, at + 20));
    list.push({ option: h.option, type: h.type, data: all.subarray(at + 20, at + 20 + h.length) });
    at += 20 + h.length;
  }
  return list;
}

describe('handshake', () => {
  it('STRUCTURED_REPLY, SET_META_CONTEXT, GO: replies and the outcome', async () => {
    const io = memoryIO(
      cat(
        encodeClientFlags(1),
        encodeOption(OPT.STRUCTURED_REPLY),
        encodeOption(OPT.SET_META_CONTEXT, encodeMetaContextRequest('disk', ['base:allocation', 'qemu:allocation-depth'])),
        encodeOption(OPT.GO, encodeInfoRequest('disk', [INFO.BLOCK_SIZE])),
      ),
    );
    const outcome = await negotiate(io, EXPORT);
    expect(outcome).toEqual({ kind: 'transmission', via: 'go', structured: true, contexts: [{ id: 1, name: 'base:allocation' }], flags: 0x81 });
    const r = replies(io.out);
    expect(r.map((x) => [x.option, x.type])).toEqual([
      [OPT.STRUCTURED_REPLY, REP.ACK],
      [OPT.SET_META_CONTEXT, REP.META_CONTEXT],
      [OPT.SET_META_CONTEXT, REP.ACK],
      [OPT.GO, REP.INFO],
      [OPT.GO, REP.INFO],
      [OPT.GO, REP.ACK],
    ]);
    expect(decodeRepMetaContext(r[1]!.data)).toEqual({ id: 1, name: 'base:allocation' });
    expect(decodeInfoReply(r[3]!.data)).toEqual({ type: INFO.EXPORT, size: 1048576n, flags: 0x81 });
    expect(decodeInfoReply(r[4]!.data)).toEqual({ type: INFO.BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 1 << 25 });
  });

  it('unknown, refused and malformed options get error replies; the handshake goes on', async () => {
    const io = memoryIO(
      cat(
        encodeClientFlags(3),
        encodeOption(99),
        encodeOption(OPT.STARTTLS),
        encodeOption(OPT.LIST, bytes('00')),
        encodeOption(OPT.SET_META_CONTEXT, encodeMetaContextRequest('disk', ['base:allocation'])),
        encodeOption(OPT.INFO, encodeInfoRequest('other', [])),
        encodeOption(OPT.LIST),
        encodeOption(OPT.ABORT),
      ),
    );
    expect(await negotiate(io, EXPORT)).toEqual({ kind: 'closed', reason: 'client aborted the handshake' });
    const r = replies(io.out);
    expect(r.map((x) => x.type)).toEqual([REP.ERR_UNSUP, REP.ERR_POLICY, REP.ERR_INVALID, REP.ERR_INVALID, REP.ERR_UNKNOWN, REP.SERVER, REP.ACK, REP.ACK]);
    expect(decodeRepServer(r[5]!.data)).toEqual({ name: 'disk', description: 'a disk' });
  });

  it('an option over 64 KiB is skipped and answered NBD_REP_ERR_TOO_BIG', async () => {
    const huge = new Uint8Array(100_000);
    const io = memoryIO(cat(encodeClientFlags(1), encodeOption(OPT.GO, huge), encodeOption(OPT.ABORT)));
    expect((await negotiate(io, EXPORT)).kind).toBe('closed');
    expect(replies(io.out).map((x) => x.type)).toEqual([REP.ERR_TOO_BIG, REP.ACK]);
  });

  it('EXPORT_NAME: size, flags and no zeros with NO_ZEROES; an unknown name closes', async () => {
    const io = memoryIO(cat(encodeClientFlags(3), encodeOption(OPT.EXPORT_NAME, new TextEncoder().encode('disk'))));
    expect(await negotiate(io, EXPORT)).toEqual({ kind: 'transmission', via: 'export-name', structured: false, contexts: [], flags: 1 });
    expect(hex(cat(...io.out).subarray(18))).toBe('0000000000100000' + '0001');
    const bad = memoryIO(cat(encodeClientFlags(1), encodeOption(OPT.EXPORT_NAME, new TextEncoder().encode('nope'))));
    expect((await negotiate(bad, EXPORT)).kind).toBe('closed');
  });

  it('unknown client flags and a bad option magic close the connection', async () => {
    expect((await negotiate(memoryIO(encodeClientFlags(4)), EXPORT)).kind).toBe('closed');
    expect((await negotiate(memoryIO(cat(encodeClientFlags(1), new Uint8Array(16))), EXPORT)).kind).toBe('closed');
  });

  it('a refused client gets NBD_REP_ERR_POLICY with the reason', async () => {
    const io = memoryIO(cat(encodeClientFlags(1), encodeOption(OPT.GO, encodeInfoRequest('disk', [])), encodeOption(OPT.ABORT)));
    await negotiate(io, EXPORT, { refuse: 'too many clients' });
    const r = replies(io.out);
    expect(r[0]!.type).toBe(REP.ERR_POLICY);
    expect(new TextDecoder().decode(r[0]!.data)).toBe('too many clients');
  });
});

describe('reply builders', () => {
  const E = (start: number, length: number, zero: boolean, data: boolean, depth: number) => ({ start, length, zero, data, depth });

  it('readPieces: zero extents are holes, data merged, the rest data', () => {
    const ext = [E(0, 4096, false, true, 1), E(4096, 4096, false, true, 2), E(8192, 8192, true, false, 0)];
    expect(readPieces(1000, 10000, ext)).toEqual([
      { start: 1000, length: 7192, hole: false },
      { start: 8192, length: 2808, hole: true },
    ]);
    expect(readPieces(0, 100, [])).toEqual([{ start: 0, length: 100, hole: false }]);
  });

  it('statusDescriptors: base:allocation flags, depth, merging, REQ_ONE', () => {
    const ext = [E(0, 512, false, true, 1), E(512, 512, false, true, 2), E(1024, 1024, true, false, 1), E(2048, 2048, true, false, 0)];
    expect(statusDescriptors(ext, 'base:allocation', 0, 4096, false)).toEqual([
      { length: 1024, flags: 0 },
      { length: 3072, flags: 3 },
    ]);
    expect(statusDescriptors(ext, 'qemu:allocation-depth', 0, 4096, false)).toEqual([
      { length: 512, flags: 1 },
      { length: 512, flags: 2 },
      { length: 1024, flags: 1 },
      { length: 2048, flags: 0 },
    ]);
    expect(statusDescriptors(ext, 'base:allocation', 0, 4096, true)).toEqual([{ length: 1024, flags: 0 }]);
    expect(statusDescriptors(ext, 'base:allocation', 100, 3000, false)).toEqual([
      { length: 924, flags: 0 },
      { length: 2076, flags: 3 },
    ]);
  });
});
