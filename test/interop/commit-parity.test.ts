/**
 * `qcow2 commit` against `qemu-img commit` (QEMU 7.2): each chain (base <- top and base <- mid <-
 * top; qcow2 v2 and v3; clusters of 512 bytes and 64 KiB; data, zero and compressed clusters
 * written by qemu-io; a raw base; a top larger than its base) is built once, then copied into two
 * folders with the same file names: qemu-img commits one copy, we commit the other, with the same
 * arguments. Then:
 *  - same exit status, stdout ("Image committed.", nothing with -q) and stderr;
 *  - every image of the two copies compares identical (`qemu-img compare`: each image's guest
 *    content, through its own chain), and each image alone too (opened without its backing file);
 *  - `qemu-img map --output=json` of the two tops says the same about what is allocated where
 *    (host offsets left out: where clusters sit is ours to choose);
 *  - `qemu-img check` finds each of our qcow2 images clean.
 * Command lines qemu-img refuses are refused alike: same exit status, each of qemu-img's messages
 * inside ours, and no image changed.
 */
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { mapWithoutOffsets } from '../support/qemu-views.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

interface Layer {
  name: string;
  /** qemu-img create options (qcow2 layers). */
  opts?: string;
  size?: string;
  /** qemu-io commands run on the layer once it exists. */
  writes: string[];
  /** qemu-img commands run on the layer after the writes (the layer's name last). */
  then?: string[][];
}

interface Chain {
  name: string;
  /** Bottom first; a base named *.raw is a raw file. */
  layers: Layer[];
}

/** What most layers get: data, zeros (whole and partial clusters), compressed data. */
const BASE_WRITES = ['write -P 0x11 0 2M'];
const MID_WRITES = ['write -P 0x22 64k 64k', 'write -z 192k 64k', 'write -c -P 0x23 320k 64k', 'write -P 0x24 1000k 3k'];
const TOP_WRITES = ['write -P 0x33 100k 8k', 'write -z 256k 128k', 'write -c -P 0x34 512k 64k', 'write -P 0x35 2044k 4k', 'write -z 1500k 1k'];

function chain(name: string, opts: string, depth: 2 | 3): Chain {
  const layers: Layer[] = [{ name: 'base.qcow2', opts, writes: BASE_WRITES }];
  if (depth === 3) layers.push({ name: 'mid.qcow2', opts, writes: MID_WRITES });
  layers.push({ name: 'top.qcow2', opts, writes: TOP_WRITES });
  return { name, layers };
}

const CHAINS: Chain[] = [
  chain('v3-64k', 'compat=1.1', 2),
  chain('v2-64k', 'compat=0.10', 2),
  chain('v3-512', 'compat=1.1,cluster_size=512', 2),
  chain('v2-512', 'compat=0.10,cluster_size=512', 2),
  chain('v3-64k-3', 'compat=1.1', 3),
  chain('v2-64k-3', 'compat=0.10', 3),
  chain('v3-512-3', 'compat=1.1,cluster_size=512', 3),
  chain('v2-512-3', 'compat=0.10,cluster_size=512', 3),
  {
    name: 'raw-base',
    layers: [
      { name: 'base.raw', writes: BASE_WRITES },
      { name: 'top.qcow2', writes: TOP_WRITES },
    ],
  },
  {
    name: 'raw-base-3',
    layers: [
      { name: 'base.raw', writes: BASE_WRITES },
      { name: 'mid.qcow2', opts: 'cluster_size=4k', writes: MID_WRITES },
      { name: 'top.qcow2', writes: TOP_WRITES },
    ],
  },
  {
    // The top is larger than its base: the base grows to the top's size.
    name: 'grow',
    layers: [
      { name: 'base.qcow2', size: '1M', writes: ['write -P 0x11 0 1M'] },
      { name: 'top.qcow2', size: '3M', writes: ['write -P 0x36 960k 128k', 'write -P 0x37 2M 64k'] },
    ],
  },
  chain('v3-extl2', 'compat=1.1,extended_l2=on', 2),
  chain('v3-extl2-3', 'compat=1.1,extended_l2=on,cluster_size=16k', 3),
  {
    // An internal snapshot in the top: emptying it keeps the snapshot's clusters.
    name: 'snapshot-top',
    layers: [
      { name: 'base.qcow2', writes: BASE_WRITES },
      { name: 'top.qcow2', writes: TOP_WRITES, then: [['snapshot', '-c', 's1']] },
    ],
  },
  {
    name: 'snapshot-top-v2',
    layers: [
      { name: 'base.qcow2', opts: 'compat=0.10', writes: BASE_WRITES },
      { name: 'top.qcow2', opts: 'compat=0.10', writes: TOP_WRITES, then: [['snapshot', '-c', 's1']] },
    ],
  },
  {
    // The top is smaller than its base: only the top's length is committed.
    name: 'small-top',
    layers: [
      { name: 'base.qcow2', size: '2M', writes: BASE_WRITES },
      { name: 'top.qcow2', size: '1M', writes: ['write -P 0x33 64k 64k', 'write -z 512k 128k'] },
    ],
  },
  {
    // A short middle image: past its end the guest reads zeros, whatever the base holds.
    name: 'short-mid',
    layers: [
      { name: 'base.qcow2', size: '2M', writes: BASE_WRITES },
      { name: 'mid.qcow2', size: '1M', writes: ['write -P 0x22 0 64k'] },
      { name: 'top.qcow2', size: '2M', writes: ['write -P 0x33 64k 64k'] },
    ],
  },
];

const img = (cwd: string, ...args: string[]) => execa('qemu-img', args, { cwd });
const io = (cwd: string, format: string, file: string, cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd });

const formatOf = (name: string) => (name.endsWith('.raw') ? 'raw' : 'qcow2');

async function buildChain(c: Chain): Promise<void> {
  const at = join(dir, 'fixtures', c.name);
  await mkdir(at, { recursive: true });
  let below: Layer | undefined;
  for (const layer of c.layers) {
    if (formatOf(layer.name) === 'raw') {
      await writeFile(join(at, layer.name), Buffer.alloc(0));
      await img(at, 'resize', '-q', '-f', 'raw', layer.name, layer.size ?? '2M');
    } else {
      const args = ['create', '-q', '-f', 'qcow2'];
      if (layer.opts) args.push('-o', layer.opts);
      if (below) args.push('-b', below.name, '-F', formatOf(below.name));
      args.push(layer.name);
      if (!below || layer.size) args.push(layer.size ?? '2M');
      await img(at, ...args);
    }
    await io(at, formatOf(layer.name), layer.name, layer.writes);
    for (const cmd of layer.then ?? []) await img(at, ...cmd, layer.name);
    below = layer;
  }
}

/** Two copies of a chain, in folders of their own, with the same file names. */
async function copies(c: Chain): Promise<{ theirs: string; ours: string }> {
  const k = n++;
  const from = join(dir, 'fixtures', c.name);
  const theirs = join(dir, `t${k}`);
  const ours = join(dir, `o${k}`);
  for (const to of [theirs, ours]) {
    await mkdir(to);
    for (const f of await readdir(from)) await copyFile(join(from, f), join(to, f));
  }
  return { theirs, ours };
}

interface Case {
  chain: string;
  args: string[];
}

const CASES: Case[] = [];
for (const c of CHAINS) {
  const three = c.layers.length === 3;
  const base = c.layers[0]?.name ?? '';
  CASES.push({ chain: c.name, args: [] }, { chain: c.name, args: ['-d'] });
  if (three) CASES.push({ chain: c.name, args: ['-b', base] }, { chain: c.name, args: ['-b', base, '-d'] }, { chain: c.name, args: ['-q', '-b', 'mid.qcow2'] });
  else CASES.push({ chain: c.name, args: ['-b', base] });
}
CASES.push(
  { chain: 'v3-64k', args: ['-q'] },
  { chain: 'v3-64k', args: ['-f', 'qcow2', '-t', 'unsafe'] },
  { chain: 'v3-64k-3', args: ['-t', 'writethrough', '-r', '1M'] },
  { chain: 'v3-64k-3', args: ['-b', './base.qcow2'] },
);

const REFUSED: { chain: string; args: string[] }[] = [
  { chain: 'v3-64k', args: ['base.qcow2'] },
  { chain: 'raw-base', args: ['-f', 'raw', 'base.raw'] },
  { chain: 'raw-base', args: ['-f', 'qcow2', 'base.raw'] },
  { chain: 'v3-64k-3', args: ['-b', 'nope.qcow2', 'top.qcow2'] },
  { chain: 'v3-64k-3', args: ['-b', 'top.qcow2', 'top.qcow2'] },
  { chain: 'v3-64k-3', args: ['-b', 'base.qcow2', 'mid.qcow2', 'top.qcow2'] },
  { chain: 'v3-64k', args: [] },
  { chain: 'v3-64k', args: ['nope.qcow2'] },
  { chain: 'v3-64k', args: ['-t', 'bogus', 'top.qcow2'] },
  { chain: 'v3-64k', args: ['-r', 'abc', 'top.qcow2'] },
];

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-commit-'));
  for (const c of CHAINS) await buildChain(c);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 commit does what qemu-img commit does', () => {
  for (const k of CASES) {
    it(`${k.chain}: ${k.args.join(' ')}`, async ({ expect }) => {
      const c = CHAINS.find((x) => x.name === k.chain) as Chain;
      const { theirs, ours } = await copies(c);
      const qr = await execa('qemu-img', ['commit', ...k.args, 'top.qcow2'], { cwd: theirs, reject: false });
      expect(qr.exitCode, qr.stderr).toBe(0);
      const rr = await qcow2(['commit', ...k.args, 'top.qcow2'], { cwd: ours });
      expect(rr.stderr).toBe(qr.stderr);
      expect(rr.exitCode).toBe(0);
      expect(rr.stdout).toBe(qr.stdout);
      for (const layer of c.layers) {
        const f = formatOf(layer.name);
        // The guest content, through each copy's own chain.
        const cmp = await execa('qemu-img', ['compare', '-f', f, '-F', f, join(theirs, layer.name), join(ours, layer.name)], { reject: false });
        expect(cmp.exitCode, `${layer.name}: ${cmp.stdout}${cmp.stderr}`).toBe(0);
        if (f === 'qcow2') {
          // Each image alone, without its backing file.
          const alone = (at: string) => JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: join(at, layer.name) } });
          const cmpAlone = await execa('qemu-img', ['compare', `json:${alone(theirs)}`, `json:${alone(ours)}`], { reject: false });
          expect(cmpAlone.exitCode, `${layer.name} alone: ${cmpAlone.stdout}${cmpAlone.stderr}`).toBe(0);
          const check = await execa('qemu-img', ['check', layer.name], { cwd: ours, reject: false });
          expect(check.exitCode, `${layer.name}: ${check.stdout}`).toBe(0);
        }
      }
      const [mt, mo] = await Promise.all([
        execa('qemu-img', ['map', '--output=json', 'top.qcow2'], { cwd: theirs }),
        execa('qemu-img', ['map', '--output=json', 'top.qcow2'], { cwd: ours }),
      ]);
      expect(mapWithoutOffsets(mo.stdout)).toEqual(mapWithoutOffsets(mt.stdout));
      if (c.layers.some((l) => l.then !== undefined)) {
        // The snapshot still holds what the top held when it was taken.
        const snaps = async (at: string) => (await img(at, 'snapshot', '-l', 'top.qcow2')).stdout.split('\n').map((l) => l.split(/\s+/).slice(0, 3).join(' '));
        expect(await snaps(ours)).toEqual(await snaps(theirs));
        for (const at of [theirs, ours]) await img(at, 'snapshot', '-a', 's1', 'top.qcow2');
        const again = await execa('qemu-img', ['compare', join(theirs, 'top.qcow2'), join(ours, 'top.qcow2')], { reject: false });
        expect(again.exitCode, again.stdout).toBe(0);
        const checkAgain = await execa('qemu-img', ['check', 'top.qcow2'], { cwd: ours, reject: false });
        expect(checkAgain.exitCode, checkAgain.stdout).toBe(0);
      }
      const info = async (at: string) => (JSON.parse((await img(at, 'info', '--output=json', '--backing-chain', 'top.qcow2')).stdout) as { 'virtual-size': number; 'backing-filename'?: string }[]).map((i) => [i['virtual-size'], i['backing-filename']]);
      expect(await info(ours)).toEqual(await info(theirs));
    });
  }
});

describe.concurrent('qcow2 commit refuses what qemu-img commit refuses', () => {
  for (const k of REFUSED) {
    it(`${k.chain}: ${k.args.join(' ') || '(no arguments)'}`, async ({ expect }) => {
      const c = CHAINS.find((x) => x.name === k.chain) as Chain;
      const { theirs, ours } = await copies(c);
      const before = await Promise.all(c.layers.map((l) => readFile(join(ours, l.name))));
      const qr = await execa('qemu-img', ['commit', ...k.args], { cwd: theirs, reject: false });
      expect(qr.exitCode).toBe(1);
      const rr = await qcow2(['commit', ...k.args], { cwd: ours });
      expect(rr.exitCode).toBe(1);
      expect(rr.stdout).toBe(qr.stdout);
      expect(rr.stderr).toMatch(/^qcow2 commit: usage: [^\n]*$/);
      for (const line of qr.stderr.split('\n')) {
        if (line.startsWith('qemu-img: ')) expect(rr.stderr).toContain(line.slice('qemu-img: '.length));
      }
      const after = await Promise.all(c.layers.map((l) => readFile(join(ours, l.name))));
      after.forEach((bytes, i) => expect(bytes.equals(before[i] as Buffer), c.layers[i]?.name).toBe(true));
    });
  }
});

describe('qcow2 commit -r limits the copy as qemu-img commit does', () => {
  // 2 MiB of data at 512 KiB a second: about 4 s in qemu-img 7.2 (its job's rate limit), and in ours.
  it('-r 512k over 2 MiB of data takes at least 3 s in both, with the same result', async ({ expect }) => {
    const make = async (at: string) => {
      await mkdir(at, { recursive: true });
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', 'base.qcow2', '8M'], { cwd: at });
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd: at });
      await execa('qemu-io', ['-c', 'write -P 0x5a 0 2M', 'top.qcow2'], { cwd: at });
    };
    const theirs = join(dir, 'rate-theirs');
    const ours = join(dir, 'rate-ours');
    await Promise.all([make(theirs), make(ours)]);
    const timed = async <T>(run: () => Promise<T>) => {
      const t0 = performance.now();
      const r = await run();
      return { r, seconds: (performance.now() - t0) / 1000 };
    };
    const [q, o] = await Promise.all([
      timed(() => execa('qemu-img', ['commit', '-r', '512k', 'top.qcow2'], { cwd: theirs, reject: false })),
      timed(() => qcow2(['commit', '-r', '512k', 'top.qcow2'], { cwd: ours })),
    ]);
    expect(q.r.exitCode, q.r.stderr).toBe(0);
    expect(o.r.exitCode, o.r.stderr).toBe(0);
    expect(o.r.stdout).toBe(q.r.stdout);
    expect(q.seconds).toBeGreaterThanOrEqual(3);
    expect(o.seconds).toBeGreaterThanOrEqual(3);
    const cmp = await execa('qemu-img', ['compare', join(theirs, 'base.qcow2'), join(ours, 'base.qcow2')], { reject: false });
    expect(cmp.exitCode, cmp.stdout).toBe(0);
    const check = await execa('qemu-img', ['check', 'base.qcow2'], { cwd: ours, reject: false });
    expect(check.exitCode, check.stdout).toBe(0);
  }, 60_000);
});
