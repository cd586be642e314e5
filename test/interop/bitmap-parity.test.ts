/**
 * `qcow2 bitmap` against `qemu-img bitmap` (QEMU 7.2): the same image is copied twice, and the
 * same steps run on each copy, qemu-img's (and qemu-io's, for guest writes between them) on one,
 * ours on the other. After every step: the same exit status, nothing on stdout, and on failure
 * qemu-img's message as ours (each qemu-img line's text inside our one line, but where the case
 * says how ours differs). At the end: `qemu-img info` lists the same bitmaps with the same flags
 * and granularities, every consistent bitmap has the same dirty ranges (`qemu-nbd -B` read by
 * `nbdinfo --map`), and `qemu-img check` finds ours clean.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { bitmapsOf, dirtyMap } from '../support/qemu-views.js';
import { requireTool } from '../support/tools.js';

let dir = '';

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (image: string, ...cmds: string[]) => execa('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), image], { cwd: dir });

async function buildFixtures(): Promise<void> {
  await img('create', '-q', '-f', 'qcow2', 'main.qcow2', '64M');
  await img('bitmap', '--add', 'main.qcow2', 'a');
  await img('bitmap', '--add', '-g', '512', 'main.qcow2', 'fine');
  await img('bitmap', '--add', '--disable', 'main.qcow2', 'dis');
  await io('main.qcow2', 'write -q -P 1 0 1k', 'write -q -P 2 10M 300k', 'write -q -c -P 3 20M 64k');
  await img('create', '-q', '-f', 'qcow2', 'source.qcow2', '64M');
  await img('bitmap', '--add', '-g', '4096', 'source.qcow2', 'src');
  await io('source.qcow2', 'write -q -P 4 30M 5k', 'write -q -P 5 63M 1M');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', 'small.qcow2', '8M');
  await img('bitmap', '--add', 'small.qcow2', 'd');
  await io('small.qcow2', 'write -q -P 6 1M 100k');
  await img('create', '-q', '-f', 'qcow2', 'plain.qcow2', '16M');
  await io('plain.qcow2', 'write -q -P 7 0 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '8M');
  await img('create', '-q', '-f', 'qcow2', 'inuse.qcow2', '8M');
  await img('bitmap', '--add', 'inuse.qcow2', 'b0');
  await img('bitmap', '--add', 'inuse.qcow2', 'b1');
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q 0 4k', '-c', 'sigraise 9', 'inuse.qcow2'], { cwd: dir, reject: false });
}

/** A `qemu-img bitmap` command line (IMAGE: the copy; SOURCE, SMALL: other fixtures), or guest writes. */
type Step = { bitmap: string[]; message?: RegExp } | { io: string[] };

interface Case {
  name: string;
  fixture: string;
  steps: Step[];
}

const CASES: Case[] = [
  { name: 'add, with the default granularity', fixture: 'main.qcow2', steps: [{ bitmap: ['--add', 'IMAGE', 'new'] }, { io: ['write -q -P 8 5M 70k'] }] },
  { name: 'add disabled at 512 bytes, and at 2 MiB', fixture: 'main.qcow2', steps: [{ bitmap: ['--add', '-g', '512', '--disable', 'IMAGE', 'n1'] }, { bitmap: ['--add', '-g', '2M', 'IMAGE', 'n2'] }, { io: ['write -q -P 8 5M 70k'] }] },
  { name: 'add to an image without bitmaps, on 512-byte clusters', fixture: 'plain.qcow2', steps: [{ bitmap: ['--add', 'IMAGE', 'first'] }, { io: ['write -q -P 8 1M 4k', 'write -q -z 9M 1M'] }] },
  { name: 'add to an image with 512-byte clusters (default granularity 4 KiB)', fixture: 'small.qcow2', steps: [{ bitmap: ['--add', 'IMAGE', 'g'] }, { io: ['write -q -P 8 2M 3k'] }] },
  { name: 'remove', fixture: 'main.qcow2', steps: [{ bitmap: ['--remove', 'IMAGE', 'fine'] }] },
  { name: 'remove every bitmap: the extension goes', fixture: 'main.qcow2', steps: [{ bitmap: ['--remove', 'IMAGE', 'a'] }, { bitmap: ['--remove', 'IMAGE', 'fine'] }, { bitmap: ['--remove', 'IMAGE', 'dis'] }] },
  { name: 'clear', fixture: 'main.qcow2', steps: [{ bitmap: ['--clear', 'IMAGE', 'fine'] }, { io: ['write -q -P 8 40M 1k'] }] },
  { name: 'disable, then writes', fixture: 'main.qcow2', steps: [{ bitmap: ['--disable', 'IMAGE', 'a'] }, { io: ['write -q -P 8 50M 64k', 'discard -q 10M 64k'] }] },
  { name: 'enable, then writes', fixture: 'main.qcow2', steps: [{ bitmap: ['--enable', 'IMAGE', 'dis'] }, { io: ['write -q -P 8 50M 64k'] }] },
  { name: 'operations in the order given', fixture: 'main.qcow2', steps: [{ bitmap: ['--disable', '--enable', '--clear', 'IMAGE', 'a'] }, { bitmap: ['--remove', '--add', 'IMAGE', 'fine'] }] },
  { name: 'merge from the same image, at another granularity', fixture: 'main.qcow2', steps: [{ bitmap: ['--merge', 'fine', 'IMAGE', 'dis'] }] },
  { name: 'add and merge in one go', fixture: 'main.qcow2', steps: [{ bitmap: ['--add', '--merge', 'fine', '--merge', 'a', 'IMAGE', 'union'] }] },
  { name: 'merge from another image (-b, -F)', fixture: 'main.qcow2', steps: [{ bitmap: ['--merge', 'src', '-b', 'SOURCE', 'IMAGE', 'a'] }, { bitmap: ['--merge', 'src', '-b', 'SOURCE', '-F', 'qcow2', 'IMAGE', 'dis'] }] },
  { name: 'remove an inconsistent bitmap; the other stays in_use', fixture: 'inuse.qcow2', steps: [{ bitmap: ['--remove', 'IMAGE', 'b0'] }] },
  {
    name: 'refusals',
    fixture: 'main.qcow2',
    steps: [
      { bitmap: ['--add', 'IMAGE', 'a'] },
      { bitmap: ['--remove', 'IMAGE', 'nope'] },
      { bitmap: ['--merge', 'nope', 'IMAGE', 'a'] },
      { bitmap: ['--add', '-g', '1000', 'IMAGE', 'z'] },
      { bitmap: ['--add', '-g', '256', 'IMAGE', 'z'] },
      { bitmap: ['--add', '-g', 'abc', 'IMAGE', 'z'] },
      { bitmap: ['IMAGE', 'a'] },
      { bitmap: ['--add', 'IMAGE'] },
      { bitmap: ['--add', 'IMAGE', 'a', 'b'] },
      { bitmap: ['-g', '64k', '--remove', 'IMAGE', 'a'] },
      { bitmap: ['--merge', 'a', '-F', 'qcow2', 'IMAGE', 'dis'] },
      { bitmap: ['--add', '-b', 'SOURCE', 'IMAGE', 'q'] },
      { bitmap: ['--merge', 'd', '-b', 'SMALL', 'IMAGE', 'a'] },
      { bitmap: ['--add', 'missing.qcow2', 'a'] },
      // The operations before the failing one are kept.
      { bitmap: ['--clear', '--remove', '--remove', 'IMAGE', 'fine'] },
    ],
  },
  {
    name: 'refusals on inconsistent bitmaps and v2 images',
    fixture: 'inuse.qcow2',
    steps: [
      { bitmap: ['--clear', 'IMAGE', 'b0'], message: /Operation clear on bitmap b0 failed: Bitmap 'b0' is inconsistent and cannot be used/ },
      { bitmap: ['--add', 'V2', 'a'], message: /Operation add on bitmap a failed: Can't make bitmap 'a' persistent: Cannot store dirty bitmaps in qcow2 v2 files/ },
    ],
  },
];

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo'] as const) await requireTool(t);
  dir = await mkdtemp(join(tmpdir(), 'qcow2-bitmap-parity-'));
  await buildFixtures();
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 bitmap does what qemu-img bitmap does', () => {
  for (const [n, c] of CASES.entries()) {
    it(c.name, async ({ expect }) => {
      const theirs = `theirs-${n}.qcow2`;
      const ours = `ours-${n}.qcow2`;
      await copyFile(join(dir, c.fixture), join(dir, theirs));
      await copyFile(join(dir, c.fixture), join(dir, ours));
      const line = (args: string[], image: string) =>
        args.map((a) => (a === 'IMAGE' ? image : a === 'SOURCE' ? 'source.qcow2' : a === 'SMALL' ? 'small.qcow2' : a === 'V2' ? 'v2.qcow2' : a));
      for (const step of c.steps) {
        if ('io' in step) {
          await io(theirs, ...step.io);
          const r = await qcow2(['io', ...step.io.flatMap((x) => ['-c', x]), ours], { cwd: dir });
          expect(r.exitCode, r.stderr).toBe(0);
          continue;
        }
        const q = await execa('qemu-img', ['bitmap', ...line(step.bitmap, theirs)], { cwd: dir, reject: false });
        const r = await qcow2(['bitmap', ...line(step.bitmap, ours)], { cwd: dir });
        const what = step.bitmap.join(' ');
        expect(r.exitCode, `${what}: ${r.stderr}`).toBe(q.exitCode);
        expect(r.stdout, what).toBe(q.stdout);
        if (q.exitCode === 0) {
          expect(r.stderr, what).toBe('');
          continue;
        }
        expect(r.stderr, what).toMatch(/^qcow2 bitmap: \w+: [^\n]*\n?$/);
        if (step.message) expect(r.stderr, what).toMatch(step.message);
        else for (const l of q.stderr.split('\n')) if (l.startsWith('qemu-img: ')) expect(r.stderr, what).toContain(l.slice('qemu-img: '.length));
      }
      const bitmaps = await bitmapsOf(theirs, dir);
      expect(await bitmapsOf(ours, dir)).toEqual(bitmaps);
      for (const b of bitmaps) if (!b.flags.includes('in-use')) expect(await dirtyMap(ours, b.name, dir), b.name).toBe(await dirtyMap(theirs, b.name, dir));
      const check = await execa('qemu-img', ['check', ours], { cwd: dir, reject: false });
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    });
  }
});
