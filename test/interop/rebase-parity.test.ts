/**
 * `qcow2 rebase` against `qemu-img rebase` (QEMU 7.2): each fixture is copied twice, qemu-img
 * rebases one copy and we rebase the other, with the same arguments. Then:
 *  - same exit status, same stdout (the progress line of `-p` included), same stderr;
 *  - `qemu-img compare` finds the two results identical (each over its new backing file);
 *  - `qemu-img info --output=json` of both names the same backing-filename, backing-filename-format
 *    and full-backing-filename; `qemu-img check` finds ours clean;
 *  - in safe mode, the guest content of ours equals the image's before the rebase (the fixture,
 *    which still stands over its old chain; `qemu-img compare`).
 * The fixtures: chains base <- mid <- top in qcow2 v2 and v3, 64 KiB and 512-byte clusters, data
 * written by qemu-io in several places, compressed clusters in base, zero clusters in top; new
 * backing files that differ from the old chain in part, shorter and longer ones, a raw one.
 * Command lines qemu-img refuses are refused alike: same exit status and stdout, and qemu-img's
 * message (its first line, after `qemu-img: `) is ours after `qcow2 rebase: CODE: `.
 */
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { expectSameMessage } from '../support/qemu-messages.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (format: string, file: string, ...cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

interface Variant {
  name: string;
  options: string;
}

const VARIANTS: Variant[] = [
  { name: 'v3', options: 'compat=1.1' },
  { name: 'v2', options: 'compat=0.10' },
  { name: 'v3-512', options: 'compat=1.1,cluster_size=512' },
  { name: 'v2-512', options: 'compat=0.10,cluster_size=512' },
  { name: 'v3-extl2', options: 'compat=1.1,extended_l2=on,cluster_size=16k' },
];

/** base <- mid <- top and the new backing files, in one variant: `${name}-base.qcow2`, ... */
async function buildChain(v: Variant): Promise<void> {
  const f = (what: string) => `${v.name}-${what}.qcow2`;
  const create = (name: string, size: string, backing?: string) =>
    img('create', '-q', '-f', 'qcow2', '-o', v.options, ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), name, size);
  await create(f('base'), '4M');
  await io('qcow2', f('base'), 'write -P 0x11 0 64k', 'write -c -P 0x12 1M 128k', 'write -P 0x13 3M 8k', 'write -P 0x14 3584k 512');
  await create(f('mid'), '4M', f('base'));
  await io('qcow2', f('mid'), 'write -P 0x21 512k 64k', 'write -P 0x22 1028k 4k', 'write -z 3M 4k');
  await create(f('top'), '4M', f('mid'));
  await io('qcow2', f('top'), 'write -P 0x31 2M 64k', 'write -z 1M 64k', 'write -z 520k 4k', 'write -P 0x32 3585k 1k');
  // Differs from the old chain in part: base's first cluster alike, the rest not.
  await create(f('new'), '4M');
  await io('qcow2', f('new'), 'write -P 0x11 0 64k', 'write -P 0x41 1M 64k', 'write -P 0x42 2049k 1k', 'write -P 0x43 3584k 4k', 'write -c -P 0x44 768k 64k');
  await create(f('short'), '1M');
  await io('qcow2', f('short'), 'write -P 0x11 0 64k', 'write -P 0x45 960k 64k');
  await create(f('long'), '8M');
  await io('qcow2', f('long'), 'write -P 0x12 1M 128k', 'write -P 0x46 5M 64k', 'write -P 0x47 3M 4k');
}

async function buildFixtures(): Promise<void> {
  for (const v of VARIANTS) await buildChain(v);
  await writeFile(join(dir, 'new.raw'), '');
  await truncate(join(dir, 'new.raw'), 4 << 20);
  await io('raw', 'new.raw', 'write -P 0x11 0 64k', 'write -P 0x51 1M 64k', 'write -P 0x52 3M 1k');
  await writeFile(join(dir, 'short.raw'), Buffer.alloc(100 * 1024 + 512, 0x53));
  // A chain over a raw base, and an image whose backing file is gone.
  await img('create', '-q', '-f', 'qcow2', '-b', 'new.raw', '-F', 'raw', 'overraw.qcow2', '4M');
  await io('qcow2', 'overraw.qcow2', 'write -P 0x61 64k 64k');
  await img('create', '-q', '-f', 'qcow2', '-u', '-b', 'gone.qcow2', '-F', 'qcow2', 'orphan.qcow2', '1M');
  await io('qcow2', 'orphan.qcow2', 'write -P 0x62 0 4k').catch(() => undefined);
  await img('create', '-q', '-f', 'qcow2', '-u', '-b', 'orphan.qcow2', '-F', 'qcow2', 'overorphan.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', 'plain.qcow2', '1M');
  // Many progress steps (float sums, the cap at 100), and 512-byte clusters' 32 KiB L2 tables.
  await img('create', '-q', '-f', 'qcow2', 'big-base.qcow2', '130M');
  await io('qcow2', 'big-base.qcow2', 'write -P 0x81 1M 64k', 'write -P 0x82 77M 1M', 'write -P 0x83 129M 4k');
  await img('create', '-q', '-f', 'qcow2', '-b', 'big-base.qcow2', '-F', 'qcow2', 'big-top.qcow2', '130M');
  await io('qcow2', 'big-top.qcow2', 'write -P 0x84 3M 100k', 'write -z 77M 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', '-b', 'big-base.qcow2', '-F', 'qcow2', 'big-512.qcow2', '9M');
  await io('qcow2', 'big-512.qcow2', 'write -P 0x85 100k 3k', 'write -P 0x86 1M 40k');
  await writeFile(join(dir, 'zeros.raw'), '');
  await truncate(join(dir, 'zeros.raw'), 1 << 20);
  await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=datafileraw.data,data_file_raw=on', 'datafileraw.qcow2', '1M');
  // An image in a folder: backing names are resolved against it.
  await mkdir(join(dir, 'sub'));
  await img('create', '-q', '-f', 'qcow2', 'sub/base.qcow2', '1M');
  await io('qcow2', 'sub/base.qcow2', 'write -P 0x71 0 128k');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'sub/top.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', 'sub/new.qcow2', '1M');
  // Only for a refused rebase of base onto top (their own chain loops); no other case reads them.
  await mkdir(join(dir, 'loop'));
  await img('create', '-q', '-f', 'qcow2', 'loop/base.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'loop/top.qcow2', '1M');
  await io('qcow2', 'sub/new.qcow2', 'write -P 0x72 64k 64k');
}

/** Two fresh copies of `fixture` (qemu-img's, ours), next to it. */
async function copies(fixture: string): Promise<{ theirs: string; ours: string }> {
  const k = n++;
  const slash = fixture.lastIndexOf('/');
  const folder = slash < 0 ? '' : fixture.slice(0, slash + 1);
  const theirs = `${folder}t${k}.qcow2`;
  const ours = `${folder}o${k}.qcow2`;
  await copyFile(join(dir, fixture), join(dir, theirs));
  await copyFile(join(dir, fixture), join(dir, ours));
  return { theirs, ours };
}

const q = (args: string[]) => execa('qemu-img', ['rebase', ...args], { cwd: dir, reject: false });
const r = (args: string[]) => qcow2(['rebase', ...args], { cwd: dir });
const withImage = (args: string[], image: string) => args.map((a) => (a === 'IMAGE' ? image : a));

interface BackingInfo {
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'full-backing-filename'?: string;
}

async function backingInfo(image: string): Promise<BackingInfo> {
  const out = await execa('qemu-img', ['info', '-U', '--output=json', image], { cwd: dir });
  const info = JSON.parse(out.stdout) as BackingInfo;
  return { 'backing-filename': info['backing-filename'], 'backing-filename-format': info['backing-filename-format'], 'full-backing-filename': info['full-backing-filename'] };
}

/** The image's own layer, without any backing file (a backing file named by -u need not exist). */
const alone = (image: string) => `json:${JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: join(dir, image) } })}`;



interface Case {
  fixture: string;
  args: string[];
  /** The rebase fails after its work (exit 1 for both). */
  fails?: boolean;
  /**
   * qemu-img 7.2 changes the guest content here (a bug of QEMU's: over a v2 image that has no
   * backing file, its write of zeros where the new backing file has data is dropped, the image
   * reading as zeros already); ours keeps it.
   */
  qemuChangesContent?: boolean;
  /** Only qemu-img's first line of stderr is ours. */
  firstLine?: boolean;
}

const SAFE = (v: string): Case[] => [
  { fixture: `${v}-top.qcow2`, args: ['-b', `${v}-new.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-b', `${v}-base.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-b', `${v}-mid.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-b', '', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-b', `${v}-short.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-b', `${v}-long.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-b', 'new.raw', '-F', 'raw', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-p', '-b', `${v}-new.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-p', '-b', `${v}-base.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-top.qcow2`, args: ['-p', '-b', '', 'IMAGE'] },
  { fixture: `${v}-mid.qcow2`, args: ['-b', `${v}-new.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-mid.qcow2`, args: ['-p', '-b', `${v}-short.qcow2`, '-F', 'qcow2', 'IMAGE'] },
  { fixture: `${v}-base.qcow2`, args: ['-b', `${v}-new.qcow2`, '-F', 'qcow2', 'IMAGE'], qemuChangesContent: v.startsWith('v2') },
  { fixture: `${v}-top.qcow2`, args: ['-b', `${v}-new.qcow2`, 'IMAGE'], fails: true },
];

const CASES: Case[] = [
  ...VARIANTS.flatMap((v) => SAFE(v.name)),
  { fixture: 'v3-top.qcow2', args: ['-q', '-p', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-t', 'writethrough', '-T', 'unsafe', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-T', 'none', '-b', 'v3-long.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-t', 'unsafe', '-b', 'short.raw', '-F', 'raw', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-f', 'qcow2', '-b', 'new.raw', 'IMAGE'], fails: true },
  { fixture: 'overraw.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'overraw.qcow2', args: ['-b', 'new.raw', '-F', 'raw', 'IMAGE'] },
  { fixture: 'plain.qcow2', args: ['-p', '-b', 'v3-long.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'big-top.qcow2', args: ['-p', '-b', '', 'IMAGE'] },
  { fixture: 'big-top.qcow2', args: ['-p', '-b', 'v3-long.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'big-512.qcow2', args: ['-p', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'sub/top.qcow2', args: ['-b', 'new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'sub/top.qcow2', args: ['-b', 'base.qcow2', '-F', 'qcow2', 'IMAGE'] },
];

/** Only the names change: the content may, as qemu-img's does. */
const UNSAFE: Case[] = [
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v2-512-top.qcow2', args: ['-u', '-p', '-b', 'v2-512-base.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', 'new.raw', '-F', 'raw', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', '', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-u', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', 'nowhere.qcow2', '-F', 'vmdk', 'IMAGE'] },
  { fixture: 'v3-512-top.qcow2', args: ['-u', '-b', 'x'.repeat(300), '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'orphan.qcow2', args: ['-u', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', 'v3-new.qcow2', 'IMAGE'], fails: true },
  { fixture: 'v3-512-top.qcow2', args: ['-u', '-b', 'x'.repeat(500), '-F', 'qcow2', 'IMAGE'], fails: true },
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', 'x'.repeat(1024), '-F', 'qcow2', 'IMAGE'], fails: true },
  { fixture: 'datafileraw.qcow2', args: ['-u', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'], fails: true },
  { fixture: 'datafileraw.qcow2', args: ['-u', '-b', '', 'IMAGE'] },
];

/** Refused before anything is written. */
const REFUSED: Case[] = [
  { fixture: 'v3-top.qcow2', args: ['-b', 'v3-new.qcow2'] },
  { fixture: 'v3-top.qcow2', args: ['IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-p', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-b', 'v3-new.qcow2', 'IMAGE', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', 'missing.qcow2'] },
  { fixture: 'v3-top.qcow2', args: ['-p', '-b', 'nothere.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-b', 'nothere.qcow2', 'IMAGE'] },
  { fixture: 'sub/top.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'bogus', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-u', '-b', 'v3-new.qcow2', '-F', 'bogus', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-f', 'bogus', '-b', 'v3-new.qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-p', '-t', 'bogus', '-b', 'v3-new.qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-T', 'bogus', '-b', 'v3-new.qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-T', 'bogus', '-t', 'bogus2', '-b', 'v3-new.qcow2', 'IMAGE'] },
  { fixture: 'orphan.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'overorphan.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-b', 'overorphan.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', '-f', 'qcow2', 'new.raw'] },
  { fixture: 'v3-top.qcow2', args: ['-f', 'raw', '-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'v3-top.qcow2', args: ['-f', 'raw', '-u', 'IMAGE'] },
  { fixture: 'zeros.raw', args: ['-b', 'v3-new.qcow2', '-F', 'qcow2', 'IMAGE'] },
  { fixture: 'zeros.raw', args: ['-p', '-u', 'IMAGE'] },
  // A new backing file whose chain holds the image itself.
  { fixture: 'v3-top.qcow2', args: ['-b', 'IMAGE', '-F', 'qcow2', 'IMAGE'], firstLine: true },
  { fixture: 'loop/base.qcow2', args: ['-p', '-b', 'top.qcow2', '-F', 'qcow2', 'loop/base.qcow2'], firstLine: true },
];

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-rebase-'));
  await buildFixtures();
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs both and checks what both must agree on; returns the two copies. */
async function runBoth(k: Case): Promise<{ theirs: string; ours: string }> {
  const { theirs, ours } = await copies(k.fixture);
  const before = await readFile(join(dir, ours));
  const qr = await q(withImage(k.args, theirs));
  const rr = await r(withImage(k.args, ours));
  const rename = (s: string) => s.split(theirs).join(ours);
  expect(rr.exitCode, `${rr.stderr}\nqemu-img: ${qr.stderr}`).toBe(qr.exitCode);
  // A header change refused in unsafe mode writes nothing.
  if (k.fails && k.args.includes('-u')) expect((await readFile(join(dir, ours))).equals(before)).toBe(true);
  expect(qr.exitCode).toBe(k.fails ? 1 : 0);
  expect(rr.stdout).toBe(rename(qr.stdout));
  if (k.fails) expectSameMessage('rebase', rr.stderr, qr.stderr, rename, { oneErrorLine: true });
  else expect(rr.stderr).toBe(rename(qr.stderr));
  expect(await backingInfo(ours)).toEqual(await backingInfo(theirs));
  const check = await execa('qemu-img', ['check', alone(ours)], { cwd: dir, reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  return { theirs, ours };
}

async function compare(a: string, b: string): Promise<void> {
  const cmp = await execa('qemu-img', ['compare', a, b], { cwd: dir, reject: false });
  expect(cmp.exitCode, `${a} ${b}: ${cmp.stdout}${cmp.stderr}`).toBe(0);
}

async function differ(a: string, b: string): Promise<void> {
  const cmp = await execa('qemu-img', ['compare', a, b], { cwd: dir, reject: false });
  expect(cmp.exitCode, `${a} ${b}: ${cmp.stdout}${cmp.stderr}`).toBe(1);
}

describe.concurrent('qcow2 rebase (safe mode) does what qemu-img rebase does', () => {
  for (const k of CASES) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async () => {
      const { theirs, ours } = await runBoth(k);
      if (k.qemuChangesContent) {
        await differ(k.fixture, theirs);
        await differ(theirs, ours);
      } else await compare(theirs, ours);
      // The guest content is the image's before the rebase (the fixture still stands over the old chain).
      await compare(k.fixture, ours);
    });
  }
});

describe.concurrent('qcow2 rebase -u does what qemu-img rebase -u does', () => {
  for (const k of UNSAFE) {
    it(`${k.fixture}: ${k.args.join(' ').replace(/x{100,}/, (m) => `x*${m.length}`)}`, async () => {
      const { theirs, ours } = await runBoth(k);
      await compare(alone(theirs), alone(ours));
    });
  }
});

describe.concurrent('qcow2 rebase refuses what qemu-img refuses', () => {
  for (const k of REFUSED) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async () => {
      const { theirs, ours } = await copies(k.fixture);
      const before = await readFile(join(dir, ours));
      const qr = await q(withImage(k.args, theirs));
      const rr = await r(withImage(k.args, ours));
      const rename = (s: string) => s.split(theirs).join(ours);
      expect(qr.exitCode).toBe(1);
      expect(rr.exitCode, rr.stderr).toBe(1);
      expect(rr.stdout).toBe(rename(qr.stdout));
      if (k.firstLine) {
        // qemu-img fails on its own image lock; its second line (is another process using the image?) is not ours.
        expectSameMessage('rebase', rr.stderr, rename(qr.stderr).split('\n')[0] ?? '', (x) => x, { oneErrorLine: true });
      } else expectSameMessage('rebase', rr.stderr, qr.stderr, rename, { oneErrorLine: true });
      expect((await readFile(join(dir, ours))).equals(before)).toBe(true);
    });
  }
});
