/**
 * Hostile and broken NBD clients, one named test per case, against each server in NBD_SERVERS
 * (qemu-nbd, the peer, and ours). Every case serves a fresh copy of the known image
 * (fixtures.ts), does its bad thing with the raw-socket client (test/support/nbd-wire.ts), and then
 * asserts that the server still serves a second, good client (qemu-io reads the known bytes over
 * NBD) and, once the server has stopped, that `qemu-img check` finds the image clean.
 *
 * What each case expects is the protocol document's answer (NetworkBlockDevice/nbd doc/proto.md).
 * Where qemu-nbd answers otherwise, the test records qemu-nbd's exact answer for it (so a change in
 * qemu shows up here) and holds ours to the spec. The differences found, with qemu-nbd 7.2:
 *
 *  - A write or write-zeroes request past the end of the export: the spec says the server SHOULD
 *    answer ENOSPC; qemu-nbd answers EINVAL (its request check computes ENOSPC, but the reply for
 *    any request that fails that check is EINVAL).
 *  - A write, trim or write-zeroes request on a read-only export: the spec says SHOULD be EPERM;
 *    qemu-nbd answers EINVAL (same reason).
 *  - A request with a bad magic: qemu-nbd sends a 16-byte simple reply (error EINVAL) and then
 *    closes. The spec lets the server hard-disconnect on a broken MUST; a reply to a request that
 *    could not be parsed carries a handle read from garbage. Both servers are asserted to close.
 *  - A write request over 32 MiB: qemu-nbd answers EINVAL and then closes, without reading the
 *    payload (allowed: a payload large enough to be a denial of service MAY end the session).
 *  - An option over 32 MiB: qemu-nbd closes at once (allowed likewise); the spec's baseline
 *    otherwise wants NBD_REP_ERR_UNSUP for an unknown option and the next option parsed.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NBD_SERVERS, sleep, startServer, stopAllServers, type NbdServer, type ServeOptions, type ServerKind } from '../support/nbd.js';
import { CMD, CMD_FLAG, ERR, INFO, OPT, REP, REPLY_FLAG_DONE, REPLY_TYPE, TFLAG, WireClient, chunkError } from '../support/nbd-wire.js';
import { tables, writeU64 } from '../support/corrupt-image.js';
import { requireTool } from '../support/tools.js';
import { KNOWN, KiB, MiB, copyOf, expectCheckClean, expectSameContents, goodClientReads, knownBytes, makeKnownImage, tempDir } from './fixtures.js';

let dir = '';
let cleanup = async () => {};
let template = '';
let serial = 0;

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io', 'qemu-nbd'] as const) await requireTool(t);
  ({ dir, cleanup } = await tempDir('nbd-hostile-'));
  template = join(dir, 'known.qcow2');
  await makeKnownImage(template);
});

afterEach(async () => {
  await stopAllServers();
});

afterAll(async () => {
  await cleanup();
});

/** Serves a fresh copy of the known image; returns the server and the copy's path. */
async function serveCopy(kind: ServerKind, opts: ServeOptions = {}): Promise<{ srv: NbdServer; image: string; pristine: string }> {
  const n = ++serial;
  const image = await copyOf(template, join(dir, `img-${n}.qcow2`));
  const pristine = await copyOf(template, join(dir, `pristine-${n}.qcow2`));
  const srv = await startServer(kind, image, { format: 'qcow2', exportName: 'disk', ...opts });
  return { srv, image, pristine };
}

/** The end of every case: a good client is served; after a clean stop the image checks clean. */
async function stillServesAndClean(srv: NbdServer, image: string): Promise<void> {
  await goodClientReads(srv.uri);
  await srv.stop();
  await expectCheckClean(image);
}

/** The spec's answer for ours, qemu-nbd's recorded answer for the peer. */
function expected(kind: ServerKind, spec: number, qemu: number): number {
  return kind === 'qemu' ? qemu : spec;
}

describe.each(NBD_SERVERS)('hostile clients: %s', (kind) => {
  it('garbage instead of the client flags: the server drops the connection', async () => {
    const { srv, image } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    await c.readGreeting();
    // Unknown client flag bits: "the server MUST drop the TCP connection".
    await c.send(Buffer.from('deadbeefcafef00d0123456789abcdef', 'hex'));
    expect(await c.closedWithin(5_000), 'connection closed').toBe(true);
    await stillServesAndClean(srv, image);
  });

  it('an unknown option: NBD_REP_ERR_UNSUP, and the session goes on', async () => {
    const { srv, image } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    await c.start();
    await c.sendOption(0x7a7a, Buffer.from('some option data the server does not know'));
    const r = await c.readOptionReply();
    expect(r.option).toBe(0x7a7a);
    expect(r.type).toBe(REP.ERR_UNSUP);
    // "MUST NOT fail to parse the next message received": the same session enters transmission.
    const s = await c.negotiate({ exportName: 'disk' });
    expect(s.size).toBe(BigInt(KNOWN.size));
    const rd = await c.read(KNOWN.bb.offset, 4 * KiB);
    expect(rd.error).toBe(0);
    expect(rd.data!.equals(knownBytes(KNOWN.bb.offset, 4 * KiB))).toBe(true);
    expect(await c.disconnect()).toBe(true);
    await stillServesAndClean(srv, image);
  });

  it('an option with a huge declared length: an error reply or a close, never buffered (memory bounded)', async () => {
    const { srv, image } = await serveCopy(kind);
    const before = await srv.memory();
    const c = await WireClient.connect(srv.endpoint);
    await c.start();
    // Declares ~4 GiB of option data, then streams up to 256 MiB of it. A server that buffered
    // options whole would grow by what it received; the bound below (64 MiB) is well under that,
    // and over what a garbage-collected runtime's young generation takes under a high allocation
    // rate (ours reads and drops the data in chunks; V8 frees them late). qemu-nbd
    // closes at once (an option over 32 MiB); ours reads and drops what it is sent (it would
    // answer NBD_REP_ERR_TOO_BIG after the declared data) until its 10 s handshake limit closes
    // the connection: both end it, neither buffers it.
    await c.send(WireClient.optionHeader(0x7a7b, 0xfffffff0));
    const filler = Buffer.alloc(MiB, 0x41);
    let sent = 0;
    for (let i = 0; i < 256 && !c.isClosed; i++) {
      const ok = await Promise.race([c.send(filler), sleep(2_000).then(() => false)]);
      if (!ok) break; // closed, or the server stopped reading (that is fine too)
      sent += filler.length;
    }
    const during = await srv.memory();
    let answered = false;
    try {
      const r = await c.readOptionReply(15_000);
      answered = (r.type & 0x80000000) !== 0;
    } catch {
      // closed, or nothing within the time: decided below
    }
    const closed = answered || (await c.closedWithin(1_000));
    expect(answered || closed, 'an error reply, or the connection closed').toBe(true);
    c.destroy();
    const growthMiB = (Math.max(during.hwmKiB, (await srv.memory()).hwmKiB) - before.hwmKiB) / 1024;
    expect(growthMiB, `peak resident growth after ${sent / MiB} MiB of option data`).toBeLessThan(64);

    // An option over a server's own limit but sent whole (1 MiB): an error reply, and the
    // session goes on ("MUST NOT fail to parse the next message received").
    const d = await WireClient.connect(srv.endpoint);
    await d.start();
    await d.sendOption(0x7a7c, Buffer.alloc(MiB, 0x42));
    const r = await d.readOptionReply(10_000);
    expect(r.option).toBe(0x7a7c);
    expect(r.type & 0x80000000, `an error reply (0x${r.type.toString(16)})`).not.toBe(0);
    await d.negotiate({ exportName: 'disk' });
    expect((await d.read(0, 4096)).data!.equals(knownBytes(0, 4096))).toBe(true);
    expect(await d.disconnect()).toBe(true);
    await stillServesAndClean(srv, image);
  }, 60_000);

  it('a request with a bad magic: the connection is closed', async () => {
    const { srv, image } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    await c.handshake({ exportName: 'disk' });
    await c.request(CMD.READ, { magic: 0x12345678, offset: 0, length: 4096, handle: 1n });
    expect(await c.closedWithin(5_000), 'connection closed').toBe(true);
    await stillServesAndClean(srv, image);
  });

  it('a read over 32 MiB: EINVAL (the connection stays usable) or a hard disconnect, never the data', async () => {
    const { srv, image } = await serveCopy(kind);
    // Simple replies. The advertised maximum block size is learnt through NBD_INFO_BLOCK_SIZE.
    const c = await WireClient.connect(srv.endpoint);
    const s = await c.handshake({ exportName: 'disk', infoRequests: [INFO.BLOCK_SIZE] });
    const max = s.blockSize?.maximum ?? 0xffffffff;
    // A read up to 32 MiB within the advertised maximum is served ("any length less than 2^25
    // SHOULD NOT be considered a denial of service").
    const fine = Math.min(32 * MiB, max);
    const ok = await c.read(0, fine);
    expect(ok.error).toBe(0);
    expect(ok.data!.equals(knownBytes(0, fine))).toBe(true);
    // Past 32 MiB (and so past any maximum the server may advertise without making 32 MiB reads
    // DoS-worthy): "The server SHOULD report an NBD_EINVAL error if the client's request ... is
    // larger than the advertised maximum block size", or it MAY hard-disconnect when the reply's
    // payload would be a denial of service. EOVERFLOW is only for reads with NBD_CMD_FLAG_DF.
    await c.request(CMD.READ, { offset: 0, length: 32 * MiB + 4 * KiB, handle: 0xb16n });
    let reply: { error: number; handle: bigint } | null = null;
    try {
      reply = await c.readSimpleReply(10_000);
    } catch {
      reply = null;
    }
    if (reply) {
      expect(reply.handle).toBe(0xb16n);
      expect(reply.error).toBe(ERR.EINVAL);
      // No payload followed the error: the next reply parses and the session goes on.
      const next = await c.read(KNOWN.bb.offset, 4 * KiB);
      expect(next.error).toBe(0);
      expect(next.data!.equals(knownBytes(KNOWN.bb.offset, 4 * KiB))).toBe(true);
    } else {
      expect(await c.closedWithin(5_000), 'no reply: then a hard disconnect').toBe(true);
    }
    c.destroy();

    // With structured replies: an error chunk (never a simple reply to a read), done.
    const d = await WireClient.connect(srv.endpoint);
    await d.handshake({ exportName: 'disk', structured: true });
    await d.request(CMD.READ, { offset: 0, length: 64 * MiB, handle: 0xb17n });
    let chunks;
    try {
      chunks = await d.readStructuredReply(10_000);
    } catch {
      chunks = null;
    }
    if (chunks) {
      const last = chunks[chunks.length - 1]!;
      expect(last.flags & REPLY_FLAG_DONE).toBe(REPLY_FLAG_DONE);
      expect(chunks.every((ch) => ch.type !== REPLY_TYPE.OFFSET_DATA && ch.type !== REPLY_TYPE.OFFSET_HOLE)).toBe(true);
      expect(chunks.map(chunkError).filter((e) => e !== 0)).toEqual([ERR.EINVAL]);
    } else {
      expect(await d.closedWithin(5_000)).toBe(true);
    }
    d.destroy();
    await stillServesAndClean(srv, image);
  });

  it('a write over 32 MiB: EINVAL (its payload consumed) or a hard disconnect, and nothing written', async () => {
    const { srv, image, pristine } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    await c.handshake({ exportName: 'disk' });
    // The whole payload follows the header, as a client that means it would send it: EINVAL for a
    // request over the maximum block size, or a hard disconnect (a payload this large MAY be
    // deemed a denial of service). qemu-nbd: EINVAL, then it closes without reading the payload.
    const length = 32 * MiB + 4 * KiB;
    const sending = c.send(Buffer.concat([WireClient.requestHeader(CMD.WRITE, { offset: 0, length, handle: 0xb18n }), Buffer.alloc(length, 0x66)]));
    let reply: { error: number; handle: bigint } | null = null;
    try {
      reply = await c.readSimpleReply(10_000);
    } catch {
      reply = null;
    }
    if (reply) {
      expect(reply.handle).toBe(0xb18n);
      expect(reply.error).toBe(ERR.EINVAL);
    }
    await sending;
    if (reply && !(await c.closedWithin(500))) {
      // Still open: then the payload was consumed and the session is in step.
      const rd = await c.read(0, 4 * KiB);
      expect(rd.error).toBe(0);
      expect(rd.data!.equals(knownBytes(0, 4 * KiB))).toBe(true);
    } else {
      expect(await c.closedWithin(5_000), 'no usable session: then a hard disconnect').toBe(true);
    }
    c.destroy();
    await stillServesAndClean(srv, image);
    await expectSameContents(image, pristine);
  });

  it('an out-of-range read (EINVAL) and write (ENOSPC); the session goes on, nothing is written', async () => {
    const { srv, image, pristine } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    const s = await c.handshake({ exportName: 'disk' });
    expect(s.size).toBe(BigInt(KNOWN.size));
    const end = KNOWN.size;
    // Reads: at the end, straddling it, and at an offset near 2^64.
    expect((await c.read(end, 4 * KiB)).error).toBe(ERR.EINVAL);
    expect((await c.read(end - 512, 4 * KiB)).error).toBe(ERR.EINVAL);
    expect((await c.read(0xfffffffffffff000n, 4 * KiB)).error).toBe(ERR.EINVAL);
    // Writes, with their payload (which the server must consume to stay in step): "The server
    // SHOULD return NBD_ENOSPC if it receives a write request including one or more sectors
    // beyond the size of the device." qemu-nbd: EINVAL.
    const writeErr = expected(kind, ERR.ENOSPC, ERR.EINVAL);
    expect(await c.write(end, Buffer.alloc(4 * KiB, 0x11))).toBe(writeErr);
    expect(await c.write(end - 512, Buffer.alloc(4 * KiB, 0x11))).toBe(writeErr);
    expect(await c.write(0xfffffffffffff000n, Buffer.alloc(4 * KiB, 0x11))).toBe(writeErr);
    // Write zeroes straddling the end: ENOSPC too (qemu-nbd: EINVAL).
    await c.request(CMD.WRITE_ZEROES, { offset: end - 512, length: 4 * KiB, handle: 0x2en });
    expect((await c.readSimpleReply()).error).toBe(writeErr);
    // The session is still in step: the last sector was not touched, the known bytes read back.
    const tail = await c.read(end - 512, 512);
    expect(tail.error).toBe(0);
    expect(tail.data!.equals(Buffer.alloc(512))).toBe(true);
    const rd = await c.read(0, 4 * KiB);
    expect(rd.data!.equals(knownBytes(0, 4 * KiB))).toBe(true);
    expect(await c.disconnect()).toBe(true);
    await stillServesAndClean(srv, image);
    await expectSameContents(image, pristine);
  });

  it('requests the spec says to refuse: EINVAL for each, and the session goes on', async () => {
    const { srv, image, pristine } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    await c.handshake({ exportName: 'disk' });
    const refused = async (type: number, r: { flags?: number; offset?: number; length?: number; payload?: Buffer }) => {
      await c.request(type, { ...r, handle: 0x5en });
      const reply = await c.readSimpleReply();
      expect(reply.handle).toBe(0x5en);
      return reply.error;
    };
    // "The server SHOULD return NBD_EINVAL if it receives an unknown command."
    expect(await refused(42, { length: 0 })).toBe(ERR.EINVAL);
    // "... if it receives an unknown command flag" (bit 8 is none), and for a flag not
    // documented for the command (REQ_ONE on a read).
    expect(await refused(CMD.READ, { flags: 1 << 8, length: 512 })).toBe(ERR.EINVAL);
    expect(await refused(CMD.READ, { flags: CMD_FLAG.REQ_ONE, length: 512 })).toBe(ERR.EINVAL);
    // DF without structured replies (NBD_FLAG_SEND_DF is then clear).
    expect(await refused(CMD.READ, { flags: CMD_FLAG.DF, length: 512 })).toBe(ERR.EINVAL);
    // Block status without a selected metadata context: "Servers SHOULD reply with NBD_EINVAL".
    expect(await refused(CMD.BLOCK_STATUS, { offset: 0, length: 4096 })).toBe(ERR.EINVAL);
    // A write with an unknown flag: refused, its payload consumed, nothing written.
    expect(await refused(CMD.WRITE, { flags: 1 << 9, offset: 0, payload: Buffer.alloc(4096, 0x33) })).toBe(ERR.EINVAL);
    const rd = await c.read(0, 4 * KiB);
    expect(rd.error).toBe(0);
    expect(rd.data!.equals(knownBytes(0, 4 * KiB))).toBe(true);
    expect(await c.disconnect()).toBe(true);
    await stillServesAndClean(srv, image);
    await expectSameContents(image, pristine);
  });

  it('a write to a read-only export: EPERM, nothing changes, the session goes on', async () => {
    const { srv, image, pristine } = await serveCopy(kind, { readOnly: true });
    const c = await WireClient.connect(srv.endpoint);
    const s = await c.handshake({ exportName: 'disk' });
    expect(s.transmissionFlags & TFLAG.READ_ONLY, 'NBD_FLAG_READ_ONLY').toBe(TFLAG.READ_ONLY);
    // "it SHOULD return NBD_EPERM if it receives a write or trim request on a read-only export",
    // and for write zeroes likewise. qemu-nbd: EINVAL for all three.
    const err = expected(kind, ERR.EPERM, ERR.EINVAL);
    expect(await c.write(0, Buffer.alloc(4 * KiB, 0x22))).toBe(err);
    expect(await c.write(KNOWN.empty.offset, Buffer.alloc(64 * KiB, 0x22), CMD_FLAG.FUA)).toBe(err);
    await c.request(CMD.TRIM, { offset: 0, length: 64 * KiB, handle: 0x7n });
    expect((await c.readSimpleReply()).error).toBe(err);
    await c.request(CMD.WRITE_ZEROES, { offset: 0, length: 64 * KiB, handle: 0x8n });
    expect((await c.readSimpleReply()).error).toBe(err);
    const rd = await c.read(0, 4 * KiB);
    expect(rd.error).toBe(0);
    expect(rd.data!.equals(knownBytes(0, 4 * KiB))).toBe(true);
    expect(await c.disconnect()).toBe(true);
    await stillServesAndClean(srv, image);
    await expectSameContents(image, pristine);
  });

  it('a connection dropped mid-payload of a write: no partial write reaches the image', async () => {
    const { srv, image, pristine } = await serveCopy(kind);
    const c = await WireClient.connect(srv.endpoint);
    await c.handshake({ exportName: 'disk' });
    // 1 MiB declared over a range that reads as zero (and one over known data), half sent.
    const header = WireClient.requestHeader(CMD.WRITE, { offset: KNOWN.empty.offset, length: MiB, handle: 0xd1n });
    await c.send(Buffer.concat([header, Buffer.alloc(MiB / 2, 0xcc)]));
    await sleep(300);
    c.destroy();
    const c2 = await WireClient.connect(srv.endpoint);
    await c2.handshake({ exportName: 'disk' });
    const header2 = WireClient.requestHeader(CMD.WRITE, { offset: 0, length: MiB, handle: 0xd2n, flags: CMD_FLAG.FUA });
    await c2.send(Buffer.concat([header2, Buffer.alloc(MiB - 1, 0xdd)]));
    await sleep(300);
    c2.destroy();
    await sleep(200);
    // Read through the server: the old bytes.
    const c3 = await WireClient.connect(srv.endpoint);
    await c3.handshake({ exportName: 'disk' });
    const a = await c3.read(KNOWN.empty.offset, MiB);
    expect(a.data!.equals(Buffer.alloc(MiB)), 'the half-sent write left the zero range alone').toBe(true);
    const b = await c3.read(0, MiB);
    expect(b.data!.equals(knownBytes(0, MiB)), 'the write cut one byte short left the data alone').toBe(true);
    expect(await c3.disconnect()).toBe(true);
    await stillServesAndClean(srv, image);
    await expectSameContents(image, pristine);
  });

  it('a half-sent header that never finishes: the server keeps serving others', async () => {
    const { srv, image } = await serveCopy(kind);
    // One stuck in transmission, 13 of the 28 bytes of a request header sent.
    const stuckRequest = await WireClient.connect(srv.endpoint);
    await stuckRequest.handshake({ exportName: 'disk' });
    await stuckRequest.send(WireClient.requestHeader(CMD.READ, { offset: 0, length: 4096, handle: 9n }).subarray(0, 13));
    // One stuck in the handshake, 10 of the 16 bytes of an option header sent.
    const stuckOption = await WireClient.connect(srv.endpoint);
    await stuckOption.start();
    await stuckOption.send(WireClient.optionHeader(OPT.GO, 10).subarray(0, 10));
    // One that never sends its client flags.
    const stuckFlags = await WireClient.connect(srv.endpoint);
    await stuckFlags.readGreeting();
    await stuckFlags.send(Buffer.from([0, 0]));
    await sleep(200);
    // Others are served meanwhile, more than once.
    await goodClientReads(srv.uri);
    await goodClientReads(srv.uri);
    expect(stuckRequest.isClosed || stuckOption.isClosed || stuckFlags.isClosed).toBe(false);
    stuckRequest.destroy();
    stuckOption.destroy();
    stuckFlags.destroy();
    await stillServesAndClean(srv, image);
  });

  it('200 idle connections at once (-e 300 -t): memory bounded, others still served', async () => {
    const { srv, image } = await serveCopy(kind, { shared: 300, persistent: true });
    await goodClientReads(srv.uri); // warm up code paths before the baseline
    const before = await srv.memory();
    // 100 that stop after the greeting, 100 that enter transmission and then send nothing.
    const clients: WireClient[] = [];
    try {
      const greeted = Array.from({ length: 100 }, async () => {
        const c = await WireClient.connect(srv.endpoint);
        clients.push(c);
        await c.readGreeting();
      });
      const idle = Array.from({ length: 100 }, async () => {
        const c = await WireClient.connect(srv.endpoint);
        clients.push(c);
        await c.handshake({ exportName: 'disk' });
      });
      await Promise.all([...greeted, ...idle]);
      expect(clients.length).toBe(200);
      await sleep(500);
      const during = await srv.memory();
      // The bound: 32 MiB over the baseline for 200 connections, 160 KiB each (a socket, its
      // session state and small buffers; no per-connection request buffers sized for 32 MiB).
      const growthMiB = (during.rssKiB - before.rssKiB) / 1024;
      expect(growthMiB, '200 idle connections: resident growth (MiB)').toBeLessThan(32);
      await goodClientReads(srv.uri);
      expect(clients.every((c) => !c.isClosed)).toBe(true);
    } finally {
      for (const c of clients) c.destroy();
    }
    await sleep(200);
    await stillServesAndClean(srv, image);
  });

  it('a client that never reads its replies while sending many reads: memory bounded (backpressure)', async () => {
    const { srv, image } = await serveCopy(kind);
    await goodClientReads(srv.uri);
    const before = await srv.memory();
    const c = await WireClient.connect(srv.endpoint);
    await c.handshake({ exportName: 'disk' });
    c.stopReading();
    // 1024 reads of 1 MiB: 1 GiB of replies that nobody takes. The requests themselves are 28 KiB.
    const requests: Buffer[] = [];
    for (let i = 0; i < 1024; i++) requests.push(WireClient.requestHeader(CMD.READ, { offset: (i % 64) * MiB, length: MiB, handle: BigInt(i + 1) }));
    c.queue(Buffer.concat(requests));
    await sleep(3_000);
    const during = await srv.memory();
    // The bound: 64 MiB over the baseline, i.e. a bounded number of replies in flight (qemu-nbd
    // keeps at most 16 requests in flight per client), not the 1 GiB asked for.
    const growthMiB = (during.hwmKiB - before.rssKiB) / 1024;
    expect(growthMiB, 'peak resident growth (MiB) with 1 GiB of unread replies').toBeLessThan(64);
    // Another client is served meanwhile.
    await goodClientReads(srv.uri);
    expect(c.isClosed).toBe(false);
    c.destroy();
    await sleep(200);
    const after = await srv.memory();
    expect((after.hwmKiB - before.rssKiB) / 1024).toBeLessThan(64);
    await stillServesAndClean(srv, image);
  });
});

describe('an engine error, ours', () => {
  it('a corrupt L2 entry: each read of it fails with EIO, the error is logged once, everything else is served, SIGTERM still exits 0', async () => {
    const bad = join(dir, `corrupt-${++serial}.qcow2`);
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', bad, '4M']);
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x33 0 256k', bad]);
    // Guest cluster 1's L2 entry now points one sector past the end of the file, unaligned.
    const t = await tables(bad);
    await writeU64(bad, t.l2EntryAt(0, 1), (1n << 63n) | BigInt(t.fileSize + 512));
    const srv = await startServer('ours', bad, { format: 'qcow2', exportName: 'disk' });
    const c = await WireClient.connect(srv.endpoint);
    await c.handshake({ exportName: 'disk' });
    const C = t.clusterSize;
    for (let i = 0; i < 3; i++) expect((await c.read(C, 4 * KiB)).error, `read ${i + 1} of the corrupt cluster`).toBe(ERR.EIO);
    const good = await c.read(0, 4 * KiB);
    expect(good.error).toBe(0);
    expect(good.data!.equals(Buffer.alloc(4 * KiB, 0x33))).toBe(true);
    expect(await c.disconnect()).toBe(true);
    // Another client, after the errors: served.
    const d = await WireClient.connect(srv.endpoint);
    await d.handshake({ exportName: 'disk' });
    expect((await d.read(128 * KiB, 4 * KiB)).error).toBe(0);
    expect(await d.disconnect()).toBe(true);
    const status = await srv.stop();
    expect(status).toEqual({ code: 0, signal: null });
    const lines = srv.stderr().trim().split('\n').filter((l) => l !== '');
    expect(lines, srv.stderr()).toHaveLength(1);
    expect(lines[0]).toMatch(/^qcow2 nbd: .*corrupt/);
  });
});
