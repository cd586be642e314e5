/**
 * Real NBD clients against each server in NBD_SERVERS: qemu-nbd (the peer) and ours (`qcow2 nbd`).
 * A test either asserts a behaviour both servers must have (the `clients: %s` blocks, run once per
 * server) or compares ours with qemu-nbd's answer on the same image (the `ours against qemu-nbd`
 * block, which runs when both are in NBD_SERVERS).
 *
 * Clients: qemu-img (info, convert, compare, map) over nbd+unix:// and nbd://127.0.0.1:PORT;
 * qemu-io -f raw op scripts judged by qemu-img check/compare against a model file; libnbd's
 * nbdinfo (--list, --map, --map=qemu:allocation-depth, --can), nbdcopy both ways, nbdsh for the
 * protocol edges (test/nbd/nbdsh-edges.py); fio's nbd engine with crc32c verification.
 */
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NBD_SERVERS, startServer, stopAllServers, type NbdServer, type ServeOptions, type ServerKind } from '../support/nbd.js';
import { requireTool, toolEnv } from '../support/tools.js';
import { KNOWN, KiB, MiB, copyOf, expectCheckClean, expectSameContents, knownBytes, makeKnownImage, tempDir } from './fixtures.js';
import { uniform } from '../../src/verification/prng.js';

const NBDSH_SCRIPT = fileURLToPath(new URL('./nbdsh-edges.py', import.meta.url));

let dir = '';
let cleanup = async () => {};
let template = '';
let base = '';
let overlay = '';
let serial = 0;

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo', 'nbdcopy', 'nbdsh', 'fio'] as const) await requireTool(t);
  ({ dir, cleanup } = await tempDir('nbd-clients-'));
  template = join(dir, 'known.qcow2');
  await makeKnownImage(template);
  // A two-layer chain for qemu:allocation-depth (see the hand calculation in its test).
  base = join(dir, 'base.qcow2');
  overlay = join(dir, 'overlay.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, '4M']);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 1 0 1M', '-c', 'write -q -P 2 2M 512k', base]);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 3 512k 1M', '-c', 'write -q -z 2M 64k', overlay]);
});

afterEach(async () => {
  await stopAllServers();
});

afterAll(async () => {
  await cleanup();
});

async function fresh(name: string): Promise<string> {
  return copyOf(template, join(dir, `${name}-${++serial}.qcow2`));
}

async function serve(kind: ServerKind, image: string, opts: ServeOptions = {}): Promise<NbdServer> {
  return startServer(kind, image, { format: 'qcow2', exportName: 'disk', ...opts });
}

/** Runs a client tool with /usr/bin first on PATH; returns stdout, failing with its stderr. */
async function run(program: string, args: string[], opts: { reject?: boolean; env?: Record<string, string>; cwd?: string } = {}) {
  return execa(program, args, { reject: opts.reject ?? true, timeout: 120_000, cwd: opts.cwd ?? dir, env: { ...toolEnv(), ...(opts.env ?? {}) } });
}

interface MapEntry {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
}

/**
 * What `qemu-img map` says about guest contents, merged where neighbours agree. Over NBD the map
 * comes from base:allocation (NBD_STATE_HOLE → data false, NBD_STATE_ZERO → zero true), so it has
 * no depth and no host offsets ("offset" is the guest offset, "present" always true); of the map
 * of the image file itself, `data` and `zero` are what a client can see, and those two must be the
 * same over NBD. The file's map splits where only the depth, allocation or host offset changes
 * (an unallocated range next to a zero cluster), so both are merged before comparing.
 */
function guestMap(json: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const e of JSON.parse(json) as MapEntry[]) {
    const last = out[out.length - 1];
    if (last && last.data === e.data && last.zero === e.zero && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length, data: e.data, zero: e.zero });
  }
  return out;
}

interface NbdinfoExtent {
  offset: number;
  length: number;
  type: number;
}

/** `nbdinfo --map[=CONTEXT] --json`, merged where neighbours have the same type. */
async function nbdinfoMap(uri: string, context?: string): Promise<Array<[number, number, number]>> {
  const r = await run('nbdinfo', [context ? `--map=${context}` : '--map', '--json', uri]);
  const out: Array<[number, number, number]> = [];
  for (const e of JSON.parse(r.stdout) as NbdinfoExtent[]) {
    const last = out[out.length - 1];
    if (last && last[2] === e.type && last[0] + last[1] === e.offset) last[1] += e.length;
    else out.push([e.offset, e.length, e.type]);
  }
  return out;
}

const CAN = ['flush', 'fua', 'trim', 'zero', 'fast-zero', 'multi-conn', 'cache'] as const;

/** `nbdinfo --can X` for each X: exit status 0 is yes, 2 is no. */
async function canTable(uri: string): Promise<Record<string, boolean>> {
  const table: Record<string, boolean> = {};
  for (const what of CAN) {
    const r = await run('nbdinfo', ['--can', what, uri], { reject: false });
    if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`nbdinfo --can ${what}: exit ${r.exitCode}: ${r.stderr}`);
    table[what] = r.exitCode === 0;
  }
  return table;
}

/** `nbdinfo --list --json`: the one export, without its URI (which names the socket). */
async function listExport(uri: string): Promise<Record<string, unknown>> {
  const r = await run('nbdinfo', ['--list', '--json', uri]);
  const j = JSON.parse(r.stdout) as { protocol: string; exports: Array<Record<string, unknown>> };
  expect(j.protocol).toBe('newstyle-fixed');
  expect(j.exports).toHaveLength(1);
  const { uri: _uri, ...rest } = j.exports[0]!;
  return rest;
}


/**
 * A qemu-io script of writes (-P), zero writes (-z), discards (cluster-aligned, served with
 * --discard=unmap: the qcow2 clusters are freed and read as zero, as qemu's qcow2 driver does;
 * the NBD spec alone would leave trimmed bytes undefined), flushes and pattern reads of what the
 * model says is there, with the model (the guest bytes) updated alongside.
 */
function opScript(seed: number, model: Buffer, count: number): string[] {
  const rand = uniform(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const cluster = 64 * KiB;
  const cmds: string[] = [];
  for (let i = 0; i < count; i++) {
    const kind = int(10);
    if (kind < 5) {
      const length = rand() < 0.5 ? 1 + int(256 * KiB) : (1 + int(16)) * 4 * KiB;
      const offset = rand() < 0.5 ? int(model.length - length) : Math.floor(int(model.length - length) / 4096) * 4096;
      const v = 1 + int(254);
      cmds.push(`write -P ${v} ${offset} ${length}`);
      model.fill(v, offset, offset + length);
      cmds.push(`read -P ${v} ${offset} ${length}`);
    } else if (kind < 7) {
      const length = 1 + int(512 * KiB);
      const offset = int(model.length - length);
      cmds.push(`write -z ${offset} ${length}`);
      model.fill(0, offset, offset + length);
      cmds.push(`read -P 0 ${offset} ${length}`);
    } else if (kind < 9) {
      const clusters = 1 + int(8);
      const offset = int(model.length / cluster - clusters) * cluster;
      cmds.push(`discard ${offset} ${clusters * cluster}`);
      model.fill(0, offset, offset + clusters * cluster);
      cmds.push(`read -P 0 ${offset} ${clusters * cluster}`);
    } else {
      cmds.push('flush');
    }
  }
  return cmds;
}

describe.each(NBD_SERVERS)('clients: %s', (kind) => {
  it('qemu-img info, convert -O raw and compare over nbd+unix and nbd://127.0.0.1:PORT', async () => {
    const image = await fresh('info');
    for (const tcp of [false, true]) {
      const srv = await serve(kind, image, { tcp, readOnly: true });
      expect(srv.uri).toMatch(tcp ? /^nbd:\/\/127\.0\.0\.1:\d+\/disk$/ : /^nbd\+unix:\/\/\/disk\?socket=/);
      const info = JSON.parse((await run('qemu-img', ['info', '--output=json', srv.uri])).stdout) as Record<string, unknown>;
      expect(info).toMatchObject({ 'virtual-size': KNOWN.size, format: 'raw', filename: srv.uri });
      const raw = join(dir, `convert-${++serial}.raw`);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri, raw]);
      expect((await readFile(raw)).equals(knownBytes(0, KNOWN.size))).toBe(true);
      await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', srv.uri, template]);
      // A difference is seen as one: exit status 1.
      const other = await fresh('other');
      await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x77 5M 512', other]);
      const diff = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', srv.uri, other], { reject: false });
      expect(diff.exitCode, diff.stdout).toBe(1);
      expect(diff.stdout).toMatch(/Content mismatch at offset 5242880/);
      await srv.stop();
    }
    await expectCheckClean(image);
  });

  it('qemu-img map over NBD says what qemu-img map of the image file says about guest contents', async () => {
    const image = await fresh('map');
    const srv = await serve(kind, image, { readOnly: true });
    const overNbd = guestMap((await run('qemu-img', ['map', '--output=json', srv.uri])).stdout);
    const ofFile = guestMap((await run('qemu-img', ['map', '--output=json', '-f', 'qcow2', template])).stdout);
    expect(overNbd).toEqual(ofFile);
    // By hand: data, then zeros (unallocated and the zero cluster alike), data, zeros.
    expect(overNbd).toEqual([
      { start: 0, length: MiB, data: true, zero: false },
      { start: MiB, length: 7 * MiB, data: false, zero: true },
      { start: 8 * MiB, length: 64 * KiB, data: true, zero: false },
      { start: 8 * MiB + 64 * KiB, length: KNOWN.size - 8 * MiB - 64 * KiB, data: false, zero: true },
    ]);
  });

  it('qemu-io -f raw write/read/zero/discard scripts over NBD, then qemu-img check and compare with a model', async () => {
    const image = await fresh('qemu-io');
    const srv = await serve(kind, image, { discard: 'unmap' });
    const model = knownBytes(0, KNOWN.size);
    for (const seed of [1, 2, 3]) {
      const cmds = opScript(seed, model, 40);
      const r = await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), srv.uri], { reject: false });
      expect(r.stdout + r.stderr, `seed ${seed}`).not.toMatch(/verification failed|error|fail/i);
      expect(r.exitCode, `seed ${seed}: ${r.stderr}`).toBe(0);
    }
    await srv.stop();
    const modelFile = join(dir, `model-${++serial}.raw`);
    await writeFile(modelFile, model);
    await expectCheckClean(image);
    await expectSameContents(image, modelFile, ['qcow2', 'raw']);
  });

  it('nbdinfo --list: the export name, description, size and contexts', async () => {
    const image = await fresh('list');
    const srv = await serve(kind, image, { description: 'the known image', allocationDepth: true });
    const e = await listExport(srv.uri);
    expect(e).toMatchObject({ 'export-name': 'disk', description: 'the known image', 'export-size': KNOWN.size, is_read_only: false });
    expect(e.contexts).toEqual(expect.arrayContaining(['base:allocation', 'qemu:allocation-depth']));
    await srv.stop();
    const ro = await serve(kind, image, { readOnly: true, exportName: 'ro' });
    expect(await listExport(ro.uri)).toMatchObject({ 'export-name': 'ro', 'export-size': KNOWN.size, is_read_only: true });
  });

  it('nbdinfo --map (base:allocation) of the known image', async () => {
    const image = await fresh('nbdinfo-map');
    const srv = await serve(kind, image, { readOnly: true });
    // type = NBD_STATE_HOLE (1) | NBD_STATE_ZERO (2): data 0, unallocated or zero clusters 3.
    expect(await nbdinfoMap(srv.uri)).toEqual([
      [0, MiB, 0],
      [MiB, 7 * MiB, 3],
      [8 * MiB, 64 * KiB, 0],
      [8 * MiB + 64 * KiB, KNOWN.size - 8 * MiB - 64 * KiB, 3],
    ]);
  });

  it('nbdinfo --map=qemu:allocation-depth on an overlay with a backing file: depths 0/1/2 as calculated by hand', async () => {
    const srv = await serve(kind, overlay, { readOnly: true, allocationDepth: true });
    // base.qcow2 (4 MiB): 0x01 over [0, 1M), 0x02 over [2M, 2.5M).
    // overlay.qcow2:     0x03 over [512k, 1.5M), a zero cluster over [2M, 2M + 64k).
    // Depth: 1 where the overlay allocates (data or zero cluster), 2 where only the base does, 0
    // where neither.
    const k = KiB;
    expect(await nbdinfoMap(srv.uri, 'qemu:allocation-depth')).toEqual([
      [0, 512 * k, 2],
      [512 * k, 1024 * k, 1],
      [1536 * k, 512 * k, 0],
      [2048 * k, 64 * k, 1],
      [2112 * k, 448 * k, 2],
      [2560 * k, 1536 * k, 0],
    ]);
    // base:allocation on the same chain: what the guest sees (the zero cluster hides base data).
    expect(await nbdinfoMap(srv.uri)).toEqual([
      [0, 1536 * k, 0],
      [1536 * k, 576 * k, 3],
      [2112 * k, 448 * k, 0],
      [2560 * k, 1536 * k, 3],
    ]);
  });

  it('nbdinfo --can: a writable export flushes, takes FUA, trims (--discard=unmap) and zeroes; a read-only one does not write', async () => {
    const image = await fresh('can');
    const rw = await serve(kind, image, { discard: 'unmap' });
    expect(await canTable(rw.uri)).toMatchObject({ flush: true, fua: true, trim: true, zero: true, 'fast-zero': true, cache: true });
    await rw.stop();
    const ro = await serve(kind, image, { readOnly: true });
    expect(await canTable(ro.uri)).toMatchObject({ trim: false, zero: false, 'fast-zero': false });
  });

  it('nbdcopy both ways: the export to a raw file, a raw file to a writable export', async () => {
    const image = await fresh('nbdcopy');
    const ro = await serve(kind, image, { readOnly: true });
    const out = join(dir, `nbdcopy-out-${++serial}.raw`);
    await run('nbdcopy', [ro.uri, out]);
    await run('cmp', [out, await rawOf(template)]);
    await ro.stop();

    // A raw file with data, zeros and a pattern that changes every 4 KiB, copied into a fresh copy.
    const src = Buffer.alloc(KNOWN.size);
    const rand = uniform(7);
    for (let off = 0; off < src.length; off += 64 * KiB) {
      const what = Math.floor(rand() * 3);
      if (what === 0) for (let b = off; b < off + 64 * KiB; b += 4 * KiB) src.fill(1 + Math.floor(rand() * 255), b, b + 4 * KiB);
    }
    const input = join(dir, `nbdcopy-in-${++serial}.raw`);
    await writeFile(input, src);
    const target = await fresh('nbdcopy-target');
    const rw = await serve(kind, target);
    await run('nbdcopy', ['--flush', input, rw.uri]);
    const back = join(dir, `nbdcopy-back-${++serial}.raw`);
    await run('nbdcopy', [rw.uri, back]);
    await run('cmp', [input, back]);
    await rw.stop();
    await expectCheckClean(target);
    await expectSameContents(target, input, ['qcow2', 'raw']);
  });

  it('nbdsh: structured replies, hole reads, block status with REQ_ONE, FAST_ZERO, flush, FUA', async () => {
    const image = await fresh('nbdsh');
    const srv = await serve(kind, image);
    const result = join(dir, `nbdsh-${++serial}.json`);
    await run('nbdsh', ['-c', `exec(open(${JSON.stringify(NBDSH_SCRIPT)}).read())`], { env: { NBD_URI: srv.uri, RESULT: result } });
    const r = JSON.parse(await readFile(result, 'utf8')) as NbdshResult;
    const READ_DATA = 1;
    const READ_HOLE = 2;
    expect(r.structured).toBe(true);
    expect(r.base_allocation).toBe(true);
    expect(r.size).toBe(KNOWN.size);
    // A read of a range no write touched: one hole chunk covering it (NBD_REPLY_TYPE_OFFSET_HOLE).
    expect(r.hole_read.zero).toBe(true);
    expect(r.hole_read.chunks).toEqual([{ status: READ_HOLE, offset: 4 * MiB, length: 64 * KiB, zero: true }]);
    // Across data and a hole: chunks that tile the range, the data as data, at least one hole.
    expect(r.mixed_read.ok).toBe(true);
    expectTiles(r.mixed_read.chunks, MiB - 64 * KiB, 128 * KiB);
    expect(r.mixed_read.chunks.filter((c) => c.offset < MiB).every((c) => c.status === READ_DATA)).toBe(true);
    expect(r.mixed_read.chunks.some((c) => c.status === READ_HOLE)).toBe(true);
    // With DF (where offered): exactly one content chunk, the zeros sent as data.
    if (r.can_df) {
      expect(r.df_read!.ok).toBe(true);
      expect(r.df_read!.chunks).toEqual([{ status: READ_DATA, offset: MiB - 64 * KiB, length: 128 * KiB, zero: false }]);
    }
    // REQ_ONE: one extent per context, no longer than asked; flags: data 0, hole|zero 3.
    expect(r.req_one_data).toHaveLength(1);
    expect(r.req_one_data[0]!.context).toBe('base:allocation');
    expect(r.req_one_data[0]!.entries).toHaveLength(1);
    expect(r.req_one_data[0]!.entries[0]![0]).toBeLessThanOrEqual(2 * MiB);
    expect(r.req_one_data[0]!.entries[0]![0]).toBeGreaterThan(0);
    expect(r.req_one_data[0]!.entries[0]![1]).toBe(0);
    expect(r.req_one_hole[0]!.entries).toHaveLength(1);
    expect(r.req_one_hole[0]!.entries[0]![0]).toBeLessThanOrEqual(MiB);
    expect(r.req_one_hole[0]!.entries[0]![1]).toBe(3);
    // Without REQ_ONE, from 0: extents that start with the 1 MiB of data.
    expect(r.status_all[0]!.entries[0]).toEqual([MiB, 0]);
    // FAST_ZERO that cannot be fast (unaligned, over data): ENOTSUP, and nothing changed.
    expect(r.can_fast_zero).toBe(true);
    expect(r.fast_zero_unaligned).toMatchObject({ errno: 95, unchanged: true });
    // FAST_ZERO over a whole cluster: done, zeros, the neighbours intact.
    expect(r.fast_zero_aligned).toEqual({ errno: 0, zero: true, neighbours: true });
    expect(r.flush).toBe(true);
    expect(r.fua_write).toBe(true);
    await srv.stop();
    const model = knownBytes(0, KNOWN.size);
    model.fill(0, 64 * KiB, 128 * KiB);
    model.fill(0x5a, 16 * MiB, 16 * MiB + 4 * KiB);
    const modelFile = join(dir, `nbdsh-model-${++serial}.raw`);
    await writeFile(modelFile, model);
    await expectCheckClean(image);
    await expectSameContents(image, modelFile, ['qcow2', 'raw']);
  });

  it('fio --ioengine=nbd: 64 MiB of 4 KiB random writes at depth 16, verified by crc32c, then qemu-img check', async () => {
    const image = await fresh('fio');
    const srv = await serve(kind, image);
    const r = await run('fio', [
      '--name=nbd-randwrite',
      '--ioengine=nbd',
      `--uri=${srv.uri}`,
      '--rw=randwrite',
      '--bs=4k',
      '--iodepth=16',
      '--size=64M',
      '--verify=crc32c',
      '--verify_fatal=1',
      '--verify_state_save=0',
      '--output-format=json',
    ], { cwd: dir });
    const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: Array<{ error: number; write: { io_bytes: number }; read: { io_bytes: number } }> }).jobs[0]!;
    expect(job.error).toBe(0);
    expect(job.write.io_bytes).toBe(64 * MiB);
    expect(job.read.io_bytes, 'the verify pass read everything back').toBe(64 * MiB);
    await srv.stop();
    await expectCheckClean(image);
  }, 180_000);

  it('-s: writes go to a temporary overlay that clients see; the image is never touched', async () => {
    const image = await fresh('snapshot');
    const pristine = await fresh('snapshot-pristine');
    const srv = await serve(kind, image, { snapshot: true });
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x44 0 64k', '-c', 'write -z 8M 64k', srv.uri]);
    await run('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x44 0 64k', '-c', 'read -P 0 8M 64k', '-c', `read -P 0xaa 64k ${MiB - 64 * KiB}`, srv.uri]);
    await srv.stop();
    await expectSameContents(image, pristine);
    await expectCheckClean(image);
  });

  it('SIGTERM: the server exits with status 0 and leaves the image clean (dirty bit clear)', async () => {
    const image = await fresh('sigterm');
    const srv = await serve(kind, image);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x31 0 64k', srv.uri]);
    expect(await srv.stop()).toEqual({ code: 0, signal: null });
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', image])).stdout) as { 'format-specific': { data: { corrupt: boolean; 'lazy-refcounts': boolean } } };
    expect(info['format-specific'].data.corrupt).toBe(false);
    await expectCheckClean(image);
    const r = await run('qemu-img', ['check', '--output=json', image]);
    expect(JSON.parse(r.stdout)).toMatchObject({ 'check-errors': 0 });
  });
});

interface ReadChunk {
  status: number;
  offset: number;
  length: number;
  zero: boolean;
}

interface NbdshResult {
  structured: boolean;
  base_allocation: boolean;
  can_df: boolean;
  can_fast_zero: boolean;
  size: number;
  hole_read: { zero: boolean; chunks: ReadChunk[] };
  mixed_read: { ok: boolean; chunks: ReadChunk[] };
  df_read?: { ok: boolean; chunks: ReadChunk[] };
  req_one_data: Array<{ context: string; entries: Array<[number, number]> }>;
  req_one_hole: Array<{ context: string; entries: Array<[number, number]> }>;
  status_all: Array<{ context: string; entries: Array<[number, number]> }>;
  fast_zero_unaligned: { errno: number; unchanged: boolean };
  fast_zero_aligned: { errno: number; zero: boolean; neighbours: boolean };
  flush: boolean;
  fua_write: boolean;
}

/** Chunks sorted by offset cover [offset, offset + length) exactly, without overlap. */
function expectTiles(chunks: ReadChunk[], offset: number, length: number): void {
  let at = offset;
  for (const c of chunks) {
    expect(c.offset).toBe(at);
    expect(c.length).toBeGreaterThan(0);
    at += c.length;
  }
  expect(at).toBe(offset + length);
}

const raws = new Map<string, string>();
/** The guest bytes of an image as a raw file (qemu-img convert), made once. */
async function rawOf(image: string): Promise<string> {
  let raw = raws.get(image);
  if (!raw) {
    raw = join(dir, `raw-of-${++serial}.raw`);
    await execa('qemu-img', ['convert', '-O', 'raw', image, raw]);
    raws.set(image, raw);
  }
  return raw;
}

describe.runIf(NBD_SERVERS.includes('qemu') && NBD_SERVERS.includes('ours'))('ours against qemu-nbd', () => {
  /**
   * Where ours deliberately answers otherwise than qemu-nbd, with the reason; everything else must
   * be equal. Keyed by `nbdinfo --list --json` field; `--can` answers follow from the same fields.
   */
  function intendedDifferences(opts: ServeOptions): Record<string, { ours: unknown; why: string }> {
    const d: Record<string, { ours: unknown; why: string }> = {
      // qemu-nbd: 4096 whatever the image. Ours: the qcow2 cluster size, the size below which a
      // write into an unallocated cluster costs a copy-on-write (the spec: "the minimum size at
      // which aligned requests will have efficient I/O, avoiding behaviour such as
      // read-modify-write").
      block_size_preferred: { ours: 64 * KiB, why: 'qcow2 cluster size' },
    };
    return d;
  }

  const CAN_FIELD: Record<(typeof CAN)[number], string> = {
    flush: 'can_flush',
    fua: 'can_fua',
    trim: 'can_trim',
    zero: 'can_zero',
    'fast-zero': 'can_fast_zero',
    'multi-conn': 'can_multi_conn',
    cache: 'can_cache',
  };

  async function both<T>(opts: ServeOptions, image: string, f: (srv: NbdServer) => Promise<T>): Promise<{ qemu: T; ours: T }> {
    const q = await serve('qemu', image, opts);
    const qemu = await f(q);
    await q.stop();
    const o = await serve('ours', image, opts);
    const ours = await f(o);
    await o.stop();
    return { qemu, ours };
  }

  it('qemu-img info over NBD: the same JSON (the filename aside)', async () => {
    const image = await fresh('cmp-info');
    const { qemu, ours } = await both({ readOnly: true }, image, async (s) => {
      const j = JSON.parse((await run('qemu-img', ['info', '--output=json', s.uri])).stdout) as Record<string, unknown>;
      delete j.filename;
      return j;
    });
    expect(ours).toEqual(qemu);
  });

  it('qemu-img map --output=json over NBD: the same map', async () => {
    for (const image of [await fresh('cmp-map'), overlay]) {
      const { qemu, ours } = await both({ readOnly: true }, image, async (s) => (await run('qemu-img', ['map', '--output=json', s.uri])).stdout);
      expect(ours).toBe(qemu);
    }
  });

  it('nbdinfo --list: the same export description (writable; read-only with allocation depth)', async () => {
    const image = await fresh('cmp-list');
    for (const opts of [{ description: 'known' }, { readOnly: true, allocationDepth: true }, { discard: 'unmap' }] as ServeOptions[]) {
      const { qemu, ours } = await both(opts, image, (s) => listExport(s.uri));
      const expectedOurs: Record<string, unknown> = { ...qemu };
      for (const [field, d] of Object.entries(intendedDifferences(opts))) expectedOurs[field] = d.ours;
      expect(ours, JSON.stringify(opts)).toEqual(expectedOurs);
    }
  });

  it('nbdinfo --map and --map=qemu:allocation-depth: the same extents (merged)', async () => {
    const { qemu, ours } = await both({ readOnly: true, allocationDepth: true }, overlay, async (s) => ({
      base: await nbdinfoMap(s.uri),
      depth: await nbdinfoMap(s.uri, 'qemu:allocation-depth'),
    }));
    expect(ours).toEqual(qemu);
  });

  it('nbdinfo --can flush|fua|trim|zero|fast-zero|multi-conn|cache: the same answers, writable and read-only', async () => {
    const image = await fresh('cmp-can');
    for (const opts of [{}, { discard: 'unmap' }, { readOnly: true }, { shared: 1 }] as ServeOptions[]) {
      const { qemu, ours } = await both(opts, image, (s) => canTable(s.uri));
      const expectedOurs = { ...qemu };
      const intended = intendedDifferences(opts);
      for (const what of CAN) if (intended[CAN_FIELD[what]]) expectedOurs[what] = intended[CAN_FIELD[what]]!.ours as boolean;
      expect(ours, JSON.stringify(opts)).toEqual(expectedOurs);
    }
  });
});
