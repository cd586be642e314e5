/**
 * Persistent bitmaps kept through our changes (issue 14), judged by QEMU: the same changes made by
 * qemu-io on one copy of an image and by an engine of ours on another leave
 *  - the same bitmaps (`qemu-img info`: names, flags, granularity),
 *  - the same dirty ranges (`qemu-nbd -B NAME` and `nbdinfo --map=qemu:dirty-bitmap:NAME`),
 *  - the same guest contents (`qemu-img compare`),
 * and `qemu-img check` finds our image clean. While our device is open, the bits it lends out
 * (readBitmap) are the live ones: equal to what QEMU stores at its close.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Qcow2Device } from '../../src/engine/types.js';
import { lane } from '../../src/verification/engines.js';
import { startServer, stopAllServers } from '../support/nbd.js';
import { requireTool, toolEnv } from '../support/tools.js';

type Op =
  | { op: 'write'; at: number; len: number; p: number }
  | { op: 'zero'; at: number; len: number; unmap?: boolean }
  | { op: 'discard'; at: number; len: number }
  | { op: 'compressed'; at: number; p: number };

interface Case {
  name: string;
  clusterSize: number;
  size: string;
  /** `qemu-img bitmap` argument lists (the bitmap's name last; the image goes before it), run first. */
  bitmaps: string[][];
  /** qemu-io commands on the image before the copies are made (the image's history). */
  before: string[];
  /** Kill a qemu-io writer after `before` (its bitmaps are left in_use). */
  crashedWriter?: boolean;
  /** The changes, in sessions: the image is closed and opened again between two sessions. */
  sessions: Op[][];
}

const K = 1024;
const M = 1024 * K;

const CASES: Case[] = [
  {
    name: '64 KiB clusters: an enabled bitmap at the cluster size, one at 512 bytes, a disabled one',
    clusterSize: 64 * K,
    size: '64M',
    bitmaps: [['--add', 'b0'], ['--add', '-g', '512', 'fine'], ['--add', 'off'], ['--disable', 'off']],
    before: ['write -P 1 1M 4k'],
    sessions: [
      [
        { op: 'write', at: 5 * M, len: 100 * K, p: 2 },
        { op: 'write', at: 7 * M + 1536, len: 700, p: 3 },
        { op: 'zero', at: 20 * M, len: M },
        { op: 'zero', at: 22 * M + 4 * K, len: 130 * K, unmap: true },
        { op: 'discard', at: 30 * M, len: 64 * K },
        { op: 'compressed', at: 40 * M, p: 4 },
      ],
      [
        { op: 'write', at: 64 * M - 512, len: 512, p: 5 },
        { op: 'write', at: 0, len: 1, p: 6 },
      ],
    ],
  },
  {
    name: '512-byte clusters: bitmap data and tables over several clusters',
    clusterSize: 512,
    size: '8M',
    bitmaps: [['--add', '-g', '512', 'fine'], ['--add', '-g', '4096', 'mid'], ['--add', 'coarse']],
    before: ['write -P 7 100k 3k'],
    sessions: [
      [
        { op: 'write', at: 3 * M + 100, len: 5000, p: 8 },
        { op: 'write', at: 6 * M, len: 300 * K, p: 9 },
        { op: 'zero', at: 512 * K, len: 64 * K },
        { op: 'discard', at: 100 * K, len: 2 * K },
        { op: 'compressed', at: 7 * M, p: 10 },
      ],
    ],
  },
  {
    name: 'a bitmap a killed writer left in_use is kept as it is, beside one that is kept up to date',
    clusterSize: 64 * K,
    size: '16M',
    bitmaps: [['--add', 'stale']],
    before: ['write -P 1 0 64k'],
    crashedWriter: true,
    sessions: [[{ op: 'write', at: 3 * M, len: 8 * K, p: 2 }]],
  },
];

const ENGINES = ['reference', 'optimized', 'optimized-tiny-caches'];

let dir: string;

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo'] as const) await requireTool(t);
  dir = await mkdtemp(join(tmpdir(), 'qcow2-bitmaps-kept-'));
});

afterAll(async () => {
  await stopAllServers();
  await rm(dir, { recursive: true, force: true });
});

function qemuIoCommand(o: Op, clusterSize: number): string {
  switch (o.op) {
    case 'write':
      return `write -q -P ${o.p} ${o.at} ${o.len}`;
    case 'zero':
      return `write -q -z ${o.unmap ? '-u ' : ''}${o.at} ${o.len}`;
    case 'discard':
      return `discard -q ${o.at} ${o.len}`;
    case 'compressed':
      return `write -q -c -P ${o.p} ${o.at} ${clusterSize}`;
  }
}

async function apply(dev: Qcow2Device, o: Op): Promise<void> {
  switch (o.op) {
    case 'write':
      return dev.write(o.at, new Uint8Array(o.len).fill(o.p));
    case 'zero':
      return dev.writeZeroes(o.at, o.len, { unmap: o.unmap ?? false });
    case 'discard':
      return dev.discard(o.at, o.len);
    case 'compressed':
      return dev.writeCompressed(o.at, new Uint8Array(dev.clusterSize).fill(o.p));
  }
}

interface BitmapInfo {
  name: string;
  flags: string[];
  granularity: number;
}

async function bitmapsOf(image: string): Promise<BitmapInfo[]> {
  const info = await execa('qemu-img', ['info', '--output=json', image]);
  expect(info.stderr).toBe('');
  return (JSON.parse(info.stdout)['format-specific'].data.bitmaps ?? []) as BitmapInfo[];
}

interface Extent {
  offset: number;
  length: number;
  dirty: boolean;
}

/** QEMU's view of a bitmap's bits: qemu-nbd -B NAME, read with nbdinfo --map. */
async function dirtyMap(image: string, name: string): Promise<Extent[]> {
  const s = await startServer('qemu', image, { format: 'qcow2', readOnly: true, extraArgs: ['-B', name] });
  try {
    const r = await execa('nbdinfo', ['--json', `--map=qemu:dirty-bitmap:${name}`, s.uri], { env: toolEnv() });
    const extents = JSON.parse(r.stdout) as { offset: number; length: number; type: number }[];
    return merge(extents.map((e) => ({ offset: e.offset, length: e.length, dirty: e.type === 1 })));
  } finally {
    await s.stop();
  }
}

function merge(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.dirty === e.dirty && last.offset + last.length === e.offset) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}

/** The bits a device lends out (readBitmap), as extents. */
async function liveMap(dev: Qcow2Device, name: string): Promise<Extent[]> {
  const runs = await (await dev.readBitmap(name)).runs(0, dev.virtualSize, Number.MAX_SAFE_INTEGER);
  let at = 0;
  return merge(
    runs.map((r) => {
      const e = { offset: at, length: r.length, dirty: r.dirty };
      at += r.length;
      return e;
    }),
  );
}

describe('persistent bitmaps through our writes, zero writes, discards and compressed writes', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      let original: string;
      let theirs: string;
      let theirBitmaps: BitmapInfo[];

      beforeAll(async () => {
        const caseDir = await mkdtemp(join(dir, 'case-'));
        original = join(caseDir, 'original.qcow2');
        await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${c.clusterSize}`, original, c.size]);
        for (const args of c.bitmaps) await execa('qemu-img', ['bitmap', ...args.slice(0, -1), original, args[args.length - 1]!]);
        if (c.before.length) await execa('qemu-io', ['-f', 'qcow2', ...c.before.flatMap((x) => ['-c', x]), original]);
        if (c.crashedWriter) {
          const killed = await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q 8M 4k', '-c', 'sigraise 9', original], { reject: false });
          expect(killed.signal).toBe('SIGKILL');
          expect((await bitmapsOf(original)).every((b) => b.flags.includes('in-use'))).toBe(true);
          await execa('qemu-img', ['bitmap', '--add', original, 'fresh']);
        }
        theirs = join(caseDir, 'theirs.qcow2');
        await copyFile(original, theirs);
        for (const session of c.sessions) {
          await execa('qemu-io', ['-f', 'qcow2', ...session.flatMap((o) => ['-c', qemuIoCommand(o, c.clusterSize)]), theirs]);
        }
        theirBitmaps = await bitmapsOf(theirs);
        expect(theirBitmaps.length).toBeGreaterThan(0);
      });

      for (const engine of ENGINES) {
        it(`${engine}: the bitmaps, their flags and dirty ranges, and the guest contents are QEMU's; check is clean`, async () => {
          const ours = join(dir, `${c.name.slice(0, 12).replace(/\W/g, '-')}-${engine}.qcow2`);
          await copyFile(original, ours);
          const live: Record<string, Extent[]> = {};
          for (const [i, session] of c.sessions.entries()) {
            const dev = await lane(engine).open(ours);
            try {
              for (const o of session) await apply(dev, o);
              if (i === c.sessions.length - 1) {
                for (const b of theirBitmaps) if (!b.flags.includes('in-use')) live[b.name] = await liveMap(dev, b.name);
              }
            } finally {
              await dev.close();
            }
          }
          expect(await bitmapsOf(ours)).toEqual(theirBitmaps);
          const check = await execa('qemu-img', ['check', ours], { reject: false });
          expect(check.exitCode, check.stdout + check.stderr).toBe(0);
          const compare = await execa('qemu-img', ['compare', theirs, ours], { reject: false });
          expect(compare.exitCode, compare.stdout + compare.stderr).toBe(0);
          for (const b of theirBitmaps) {
            if (b.flags.includes('in-use')) continue;
            const expected = await dirtyMap(theirs, b.name);
            if (b.flags.includes('auto')) expect(expected.some((e) => e.dirty), `${b.name} records the writes`).toBe(true);
            expect(await dirtyMap(ours, b.name), `bitmap ${b.name}`).toEqual(expected);
            expect(live[b.name], `bitmap ${b.name} while open`).toEqual(expected);
          }
        });
      }
    });
  }
});
