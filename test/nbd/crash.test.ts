/**
 * Data safety of the NBD server under `kill -9` (issue 11): "kill -9 of the server during a write
 * load leaves an image that qemu-img check finds free of corruption, with every flushed write
 * readable", and "FLUSH returns only when everything acknowledged before it is durable; FUA writes
 * are durable before their reply".
 *
 * Each round: a fresh image (one of three kinds: allocating, preallocation=metadata,
 * lazy_refcounts=on) is served (ours, and qemu-nbd as the control) on a unix socket; a load client
 * of our own (the raw client of test/support/nbd-wire.ts, simple replies) keeps DEPTH requests in
 * flight: random 512-aligned writes whose bytes are derived from (write sequence number, absolute
 * byte offset), some with FUA, and FLUSHes in between. Every request is stamped with a logical
 * clock when it is sent and when its reply is read. After a seeded number of replies the server
 * gets SIGKILL. Then:
 *   - `qemu-img check --output=json` on the image as the crash left it: no corruptions, no check
 *     errors (leaked clusters are allowed: a crash may leak). One exception, by the format's
 *     design: a lazy_refcounts image left with its dirty bit set has stale refcounts until it is
 *     repaired (qemu-img check opens it without QEMU's automatic repair and counts them); then
 *     `qemu-img check -r all` on a copy must leave it free of corruption, and our engine's repair
 *     (next step) is judged by the last check. qemu-nbd leaves such images; ours (which keeps
 *     refcounts current) has so far left them clean;
 *   - our engine opens it read-write (repairing a dirty image) and reads it whole; every sector is
 *     judged against the writes that cover it: the latest-sent durable write R covering it (durable:
 *     acknowledged before a FLUSH was sent whose reply then came back, or a FUA write whose reply
 *     came back) must be there, unless a write W covering that sector may have landed after R: W
 *     sent after R, or W not acknowledged before R was sent (concurrent, any order allowed), or W
 *     never acknowledged. Those bytes may hold R's or any such W's pattern. Sectors no durable
 *     write covers may hold zeros or any write covering them. Nothing else is allowed;
 *   - after our engine closed it, `qemu-img check` again: clean apart from leaks.
 *
 * What this crash is, and is not: kill -9 of a process loses what the process held in its own
 * memory, but everything it had handed to the kernel (the page cache) survives. That is what the
 * issue asks, and it catches a server that acknowledges a FLUSH or a FUA write before its own
 * buffers (metadata caches, queued writes) reached the kernel, or that leaves metadata pointing at
 * clusters it never wrote; it is weaker than a power loss, where data written but not fsync'ed is
 * lost too (fsync itself is not observed here).
 */
import { execa } from 'execa';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/device/open.js';
import { startServer, stopAllServers, type NbdServer, type ServerKind } from '../support/nbd.js';
import { ClosedError, CMD, CMD_FLAG, SIMPLE_REPLY_MAGIC, TFLAG, WireClient } from '../support/nbd-wire.js';
import { requireTool } from '../support/tools.js';
import { MiB, tempDir } from './fixtures.js';
import { uniform } from '../../src/verification/prng.js';

const SIZE = 16 * MiB;
const SECTOR = 512;
const DEPTH = 8;

type ImageKind = 'fresh' | 'preallocated' | 'lazy-refcounts';
const ROUNDS: ReadonlyArray<{ kind: ImageKind; seed: number }> = [
  { kind: 'fresh', seed: 1 },
  { kind: 'fresh', seed: 2 },
  { kind: 'fresh', seed: 3 },
  { kind: 'preallocated', seed: 4 },
  { kind: 'preallocated', seed: 5 },
  { kind: 'lazy-refcounts', seed: 6 },
  { kind: 'lazy-refcounts', seed: 7 },
];

let dir = '';
let cleanup = async () => {};

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-nbd'] as const) await requireTool(t);
  ({ dir, cleanup } = await tempDir('nbd-crash-'));
});
afterEach(async () => {
  await stopAllServers();
});
afterAll(async () => {
  await cleanup();
});


/** The byte write `seq` puts at absolute offset `pos`. */
function patternByte(seq: number, pos: number): number {
  let x = Math.imul(seq + 1, 0x9e3779b1) ^ Math.imul(pos, 0x85ebca77);
  x ^= x >>> 15;
  x = Math.imul(x, 0x2c1b3c6d);
  return (x >>> 24) & 0xff;
}

function pattern(seq: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = patternByte(seq, offset + i);
  return b;
}

interface WriteRecord {
  seq: number;
  offset: number;
  length: number;
  fua: boolean;
  sentAt: number;
  /** Logical clock of its reply; Infinity when none came (or it failed). */
  ackedAt: number;
}

interface LoadResult {
  writes: WriteRecord[];
  /** Send clocks of the FLUSHes whose (successful) reply came back. */
  flushesDone: number[];
  replies: number;
}

/** Drives the load until the server is killed after `killAfter` replies; returns what happened. */
async function runLoad(server: NbdServer, seed: number, killAfter: number): Promise<LoadResult> {
  const random = uniform(seed);
  const client = await WireClient.connect(server.endpoint);
  const session = await client.handshake({ exportName: server.exportName });
  expect(Number(session.size)).toBe(SIZE);
  expect(session.transmissionFlags & TFLAG.SEND_FLUSH).toBeTruthy();
  expect(session.transmissionFlags & TFLAG.SEND_FUA).toBeTruthy();

  let clock = 0;
  let replies = 0;
  let killed = false;
  const writes: WriteRecord[] = [];
  const flushesDone: number[] = [];
  const inflight = new Map<bigint, { type: 'write'; rec: WriteRecord } | { type: 'flush'; sentAt: number }>();
  let nextHandle = 1n;
  let wakeSender: (() => void) | null = null;

  const reader = (async () => {
    for (;;) {
      let head: Buffer;
      try {
        head = await client.readExact(16, 20_000);
      } catch (err) {
        if (err instanceof ClosedError && killed) return;
        throw err;
      }
      if (head.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error(`bad reply magic ${head.readUInt32BE(0).toString(16)}`);
      const error = head.readUInt32BE(4);
      const handle = head.readBigUInt64BE(8);
      const op = inflight.get(handle);
      if (!op) throw new Error(`reply for unknown handle ${handle}`);
      inflight.delete(handle);
      const at = ++clock;
      if (error !== 0) throw new Error(`${op.type} failed with NBD error ${error}`);
      if (op.type === 'write') op.rec.ackedAt = at;
      else flushesDone.push(op.sentAt);
      replies++;
      if (replies === killAfter) {
        killed = true;
        process.kill(server.pid, 'SIGKILL');
      }
      const w = wakeSender as (() => void) | null;
      wakeSender = null;
      w?.();
    }
  })();

  let seq = 0;
  const sender = (async () => {
    while (!killed) {
      if (inflight.size >= DEPTH) {
        await new Promise<void>((r) => (wakeSender = r));
        continue;
      }
      const handle = nextHandle++;
      const roll = random();
      if (roll < 0.07) {
        inflight.set(handle, { type: 'flush', sentAt: ++clock });
        await client.request(CMD.FLUSH, { handle });
        continue;
      }
      const sectors = 1 + Math.floor(random() ** 2 * 128);
      const offset = Math.floor(random() * (SIZE / SECTOR - sectors + 1)) * SECTOR;
      const length = sectors * SECTOR;
      const fua = roll < 0.17;
      const rec: WriteRecord = { seq: seq++, offset, length, fua, sentAt: 0, ackedAt: Infinity };
      const payload = pattern(rec.seq, offset, length);
      rec.sentAt = ++clock;
      writes.push(rec);
      inflight.set(handle, { type: 'write', rec });
      await client.request(CMD.WRITE, { handle, offset, payload, flags: fua ? CMD_FLAG.FUA : 0 });
    }
  })();

  await reader;
  const w = wakeSender as (() => void) | null;
  w?.();
  await sender;
  client.destroy();
  return { writes, flushesDone, replies };
}

async function qemuCheck(image: string): Promise<{ corruptions: number; leaks: number; checkErrors: number; raw: string }> {
  const r = await execa('qemu-img', ['check', '-f', 'qcow2', '--output=json', image], { reject: false });
  // Exit status 0 clean, 3 leaks only, 2 corrupt (judged by the caller); 1: the check failed.
  if (r.exitCode !== 0 && r.exitCode !== 2 && r.exitCode !== 3) throw new Error(`qemu-img check ${image}: exit ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(r.stdout) as { corruptions?: number; leaks?: number; 'check-errors': number };
  return { corruptions: j.corruptions ?? 0, leaks: j.leaks ?? 0, checkErrors: j['check-errors'], raw: r.stdout };
}

/** Checks every sector of `data` against the writes; returns the mismatches (at most a few). */
function judge(data: Uint8Array, load: LoadResult): { mismatches: string[]; durable: number; sectorsRequired: number } {
  const lastFlush = load.flushesDone.length > 0 ? Math.max(...load.flushesDone) : -Infinity;
  const durable = (w: WriteRecord) => w.ackedAt !== Infinity && (w.fua || w.ackedAt < lastFlush);
  const nSectors = SIZE / SECTOR;
  const covering: number[][] = Array.from({ length: nSectors }, () => []);
  for (const w of load.writes) for (let s = w.offset / SECTOR; s < (w.offset + w.length) / SECTOR; s++) covering[s]!.push(w.seq);
  const bySeq = load.writes;
  const mismatches: string[] = [];
  let sectorsRequired = 0;
  const matches = (seq: number, pos: number) => {
    for (let i = 0; i < SECTOR; i++) if (data[pos + i] !== patternByte(seq, pos + i)) return false;
    return true;
  };
  const isZero = (pos: number) => {
    for (let i = 0; i < SECTOR; i++) if (data[pos + i] !== 0) return false;
    return true;
  };
  for (let s = 0; s < nSectors; s++) {
    const pos = s * SECTOR;
    const ws = covering[s]!.map((q) => bySeq[q]!);
    let required: WriteRecord | undefined;
    for (const w of ws) if (durable(w) && (!required || w.sentAt > required.sentAt)) required = w;
    const allowed: WriteRecord[] = required ? ws.filter((w) => w === required || w.sentAt > required.sentAt || w.ackedAt > required.sentAt) : ws;
    if (required) sectorsRequired++;
    if (!required && isZero(pos)) continue;
    if (allowed.some((w) => matches(w.seq, pos))) continue;
    const holder = ws.find((w) => matches(w.seq, pos));
    mismatches.push(
      `sector ${s} (offset ${pos}): ` +
        (required ? `durable write #${required.seq} (${required.fua ? 'FUA' : 'flushed'}) lost` : 'holds bytes no write put there') +
        (holder ? `; it holds write #${holder.seq}'s bytes, not allowed` : isZero(pos) ? '; it reads as zeros' : '; it holds foreign bytes') +
        ` (allowed: ${allowed.map((w) => '#' + w.seq).join(' ') || 'zeros'})`,
    );
    if (mismatches.length >= 10) break;
  }
  return { mismatches, durable: load.writes.filter(durable).length, sectorsRequired };
}

/** The qcow2 v3 dirty bit (incompatible feature bit 0): set while lazy refcounts may be stale. */
async function dirtyBit(image: string): Promise<boolean> {
  const h = await readFile(image);
  return h.readUInt32BE(4) >= 3 && (h.readBigUInt64BE(72) & 1n) === 1n;
}

async function makeImage(path: string, kind: ImageKind): Promise<void> {
  const opts = kind === 'preallocated' ? ['-o', 'preallocation=metadata'] : kind === 'lazy-refcounts' ? ['-o', 'lazy_refcounts=on'] : [];
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...opts, path, String(SIZE)]);
}

const SERVERS: readonly ServerKind[] = ['ours', 'qemu'];

describe('the crash judge', () => {
  // Sector 0: write #0 flushed, then #1 (overlapping, sent after the flush returned, never acked).
  // Sector 1: FUA write #2 acked, then #3 sent and acked before a later flush was sent: #3 required.
  // Sector 2: #4 acked, never flushed.
  const w = (seq: number, sector: number, sentAt: number, ackedAt: number, fua = false): WriteRecord => ({ seq, offset: sector * SECTOR, length: SECTOR, fua, sentAt, ackedAt });
  const load: LoadResult = {
    writes: [w(0, 0, 1, 2), w(1, 0, 5, Infinity), w(2, 1, 6, 7, true), w(3, 1, 8, 9), w(4, 2, 11, 12)],
    flushesDone: [3, 10],
    replies: 0,
  };
  const image = (fill: Array<[number, number | null]>) => {
    const data = new Uint8Array(SIZE);
    for (const [sector, seq] of fill) if (seq !== null) data.set(pattern(seq, sector * SECTOR, SECTOR), sector * SECTOR);
    return data;
  };
  it('accepts the durable write or a later overlapping one, and anything written for unflushed sectors', () => {
    for (const s0 of [0, 1]) for (const s2 of [null, 4]) expect(judge(image([[0, s0], [1, 3], [2, s2]]), load).mismatches).toEqual([]);
    expect(judge(image([[0, 0], [1, 3]]), load)).toMatchObject({ durable: 3, sectorsRequired: 2 });
  });
  it('catches a lost flushed write, a lost FUA write, an older value, and bytes nobody wrote', () => {
    expect(judge(image([[1, 3]]), load).mismatches).toHaveLength(1); // sector 0 lost (zeros)
    expect(judge(image([[0, 0], [1, 2]]), load).mismatches).toHaveLength(1); // sector 1: older #2 instead of #3
    expect(judge(image([[0, 0]]), load).mismatches).toHaveLength(1); // sector 1: FUA and flushed both lost
    const foreign = image([[0, 0], [1, 3]]);
    foreign[2 * SECTOR + 7] = 1;
    expect(judge(foreign, load).mismatches).toHaveLength(1); // sector 2 holds bytes no write put there
    const torn = image([[0, 0], [1, 3]]);
    torn[10] = torn[10]! ^ 0xff;
    expect(judge(torn, load).mismatches).toHaveLength(1);
  });
});

describe.each(SERVERS)('kill -9 of the %s NBD server under a write load', (server) => {
  it.each(ROUNDS)('round $seed on a $kind image: qemu-img check finds no corruption; every flushed and every FUA write reads back', async ({ kind, seed }) => {
    const image = join(dir, `${server}-${kind}-${seed}.qcow2`);
    await makeImage(image, kind);
    const srv = await startServer(server, image, { format: 'qcow2' });
    const killAfter = 150 + Math.floor(uniform(seed * 7919)() * 600);
    const load = await runLoad(srv, seed, killAfter);
    await srv.stop().catch(() => {});
    expect(srv.exitStatus()?.signal).toBe('SIGKILL');
    // Replies already on their way when the server died still count: they were sent.
    expect(load.replies).toBeGreaterThanOrEqual(killAfter);

    const dirty = await dirtyBit(image);
    const before = await qemuCheck(image);
    if (kind === 'lazy-refcounts' && dirty) {
      // Lazy refcounts: a dirty image's refcounts are stale by design (qemu-img check, which opens
      // without the automatic repair, counts them as corruptions); it must be whole once repaired.
      // QEMU's repair is judged on a copy; ours below (our engine opens it read-write).
      expect(before.checkErrors, before.raw).toBe(0);
      const copy = `${image}.qemu-repaired`;
      await copyFile(image, copy);
      await execa('qemu-img', ['check', '-q', '-r', 'all', '-f', 'qcow2', copy], { reject: false });
      const repaired = await qemuCheck(copy);
      expect({ corruptions: repaired.corruptions, checkErrors: repaired.checkErrors }, repaired.raw).toEqual({ corruptions: 0, checkErrors: 0 });
    } else {
      expect({ corruptions: before.corruptions, checkErrors: before.checkErrors }, before.raw).toEqual({ corruptions: 0, checkErrors: 0 });
    }

    const device = await openImage(image, { format: 'qcow2' });
    const data = new Uint8Array(SIZE);
    try {
      for (let off = 0; off < SIZE; off += MiB) await device.readInto(off, data.subarray(off, off + MiB));
    } finally {
      await device.close();
    }
    const verdict = judge(data, load);
    if (process.env.CRASH_VERBOSE) console.log(`${server} ${kind} seed ${seed}: ${load.writes.length} writes (${load.writes.filter((x) => x.fua).length} FUA), ${load.flushesDone.length} flushes returned, ${verdict.durable} durable writes, ${verdict.sectorsRequired} sectors required, replies ${load.replies}, dirty ${dirty}, leaks ${before.leaks}, corruptions before repair ${before.corruptions}`);
    expect(verdict.mismatches).toEqual([]);
    // The round meant something: writes were made durable by FLUSH and by FUA before the kill.
    expect(verdict.durable).toBeGreaterThan(0);
    expect(verdict.sectorsRequired).toBeGreaterThan(0);

    const after = await qemuCheck(image);
    expect({ corruptions: after.corruptions, checkErrors: after.checkErrors }, after.raw).toEqual({ corruptions: 0, checkErrors: 0 });
  });
});
