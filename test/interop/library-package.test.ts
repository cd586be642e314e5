/**
 * The package as a user gets it: `npm pack` (of the dist/ the test run built), unpacked into a fresh
 * project's node_modules/qcow2-verified as `npm install <tarball>` would, with its install script
 * run there. Its dependencies are the repository's node_modules (a symlink: nothing is downloaded).
 * Then, from the fresh project (type: module): the library creates, opens, writes, reads, reports
 * block status, converts and streams, and QEMU says the copies are identical; the verification entry
 * lists the lanes, runs the campaign and the crash explorer (on a lane and on the user's own opener,
 * and catches broken openers); TypeScript resolves both entries' types (and a type error fails);
 * Node refuses deep imports; the README's library section is the examples/ files, which run.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImg, requireTool } from '../support/tools.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MiB = 1024 * 1024;

let tmp = '';
let project = '';
let installed = '';
let packed: string[] = [];

async function node(args: string[], cwd = project) {
  return execa(process.execPath, args, { cwd, reject: false });
}

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  tmp = await mkdtemp(join(tmpdir(), 'qcow2-library-'));
  // dist/ is built by the test run's global setup; packing must not rebuild it (prepare).
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: REPO });
  const info = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  packed = info[0]!.files.map((f) => f.path);
  project = join(tmp, 'fresh');
  installed = join(project, 'node_modules', 'qcow2-verified');
  await mkdir(installed, { recursive: true });
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'fresh', version: '1.0.0', type: 'module', private: true }));
  await execa('tar', ['xzf', join(tmp, info[0]!.filename), '-C', installed, '--strip-components=1']);
  // What npm would have installed beside it: the dependencies.
  await symlink(join(REPO, 'node_modules'), join(installed, 'node_modules'), 'dir');
  // And the package's install script, run in the installed package as npm runs it.
  const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { scripts: { install: string } };
  const [cmd, ...args] = pkg.scripts.install.split(' ');
  expect(cmd).toBe('node');
  const built = await node(args, installed);
  expect(built.exitCode, built.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the build with its declarations, the CLI, the native sources and install script, spec/ and the README; no sources', () => {
    for (const f of [
      'package.json',
      'README.md',
      'bin/qcow2',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/verification/index.js',
      'dist/verification/index.d.ts',
      'dist/cli/main.js',
      'dist/spec/generated/Qcow2Header.js',
      'dist/spec/generated/Qcow2Header.d.ts',
      'native/build.mjs',
      'native/binding.gyp',
      'native/addon.c',
      'spec/qcow2_header.ksy',
    ]) {
      expect(packed, f).toContain(f);
    }
    expect(packed.filter((p) => p.startsWith('src/') || p.startsWith('test/') || p.startsWith('native/build/') || p.endsWith('.map'))).toEqual([]);
    // The install script built the addon from the packed sources.
    expect(existsSync(join(installed, 'native', 'build', 'Release', 'qcow2_native.node'))).toBe(true);
  });

  it('runs its CLI from the installed copy', async () => {
    const image = join(tmp, 'cli.qcow2');
    const r = await node([join(installed, 'bin', 'qcow2'), 'create', '-q', image, '1M']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await qemuImg(['check', image])).exitCode).toBe(0);
  });
});

const USER_SCRIPT = `
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as qcow2 from 'qcow2-verified';

const dir = process.argv[2];
const MiB = 1024 * 1024;
const src = join(dir, 'src.qcow2');
await qcow2.createImage(src, { size: 8 * MiB, clusterSize: 65536 });
const pattern = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) % 251);

const dev = await qcow2.openImage(src);
const out = { format: dev.format, size: dev.virtualSize, capabilities: dev.capabilities };
await dev.write(0, pattern(65536, 1));
await dev.write(3 * MiB + 512, pattern(1000, 2), { fua: true });
await dev.write(5 * MiB, pattern(65536, 3));
await dev.writeZeroes(5 * MiB, 65536);
await dev.flush();
const back = await dev.read(3 * MiB + 512, 1000);
out.readBack = back.every((b, i) => b === pattern(1000, 2)[i]);
out.status = await dev.blockStatus(0, dev.virtualSize);
await dev.close();

// A qcow2 image over the first one: block status says which layer answers.
const top = join(dir, 'top.qcow2');
await qcow2.createImage(top, { size: 8 * MiB, backingFile: src, backingFormat: 'qcow2' });
const overlay = await qcow2.openQcow2(top, { readOnly: true });
out.overlayStatus = (await overlay.blockStatus(0, 4 * MiB)).map((e) => [e.start, e.length, e.depth]);
await overlay.close();

out.progress = [];
await qcow2.convertImage(src, join(dir, 'out.qcow2'), { outputFormat: 'qcow2', compress: true, onProgress: (d, t) => out.progress.push([d, t]) });
await qcow2.convertImage(top, join(dir, 'flat.raw'));
const reader = await qcow2.openImage(src, { readOnly: true });
await pipeline(qcow2.guestStream(reader), createWriteStream(join(dir, 'stream.raw')));
await reader.close();

try {
  await qcow2.openImage(join(dir, 'missing.qcow2'));
} catch (err) {
  out.error = { isQcow2Error: qcow2.isQcow2Error(err), instance: err instanceof qcow2.Qcow2Error, code: err.code, errno: qcow2.errnoOf(err) };
}
console.log(JSON.stringify(out));
`;

describe('the library, imported by a user', () => {
  it('creates, opens, writes, reads back, reports block status, converts and streams; QEMU agrees', async () => {
    const dir = join(tmp, 'user');
    await mkdir(dir);
    await writeFile(join(project, 'user.mjs'), USER_SCRIPT);
    const r = await node(['user.mjs', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      format: string;
      size: number;
      capabilities: Record<string, boolean>;
      readBack: boolean;
      status: { start: number; length: number; zero: boolean; data: boolean; depth: number }[];
      overlayStatus: [number, number, number][];
      progress: [number, number][];
      error: { isQcow2Error: boolean; instance: boolean; code: string; errno: string };
    };
    expect(out).toMatchObject({ format: 'qcow2', size: 8 * MiB, readBack: true });
    expect(out.capabilities).toMatchObject({ compressedWrites: true, snapshots: true });
    expect(out.status).toEqual([
      { start: 0, length: 65536, zero: false, data: true, depth: 1 },
      { start: 65536, length: 3 * MiB - 65536, zero: true, data: false, depth: 0 },
      { start: 3 * MiB, length: 65536, zero: false, data: true, depth: 1 },
      { start: 3 * MiB + 65536, length: 2 * MiB - 65536, zero: true, data: false, depth: 0 },
      { start: 5 * MiB, length: 65536, zero: true, data: false, depth: 1 },
      { start: 5 * MiB + 65536, length: 3 * MiB - 65536, zero: true, data: false, depth: 0 },
    ]);
    // Nothing in the overlay: the backing file (depth 2) answers for the data, no layer for the rest.
    expect(out.overlayStatus).toEqual([
      [0, 65536, 2],
      [65536, 3 * MiB - 65536, 0],
      [3 * MiB, 65536, 2],
      [3 * MiB + 65536, MiB - 65536, 0],
    ]);
    const done = out.progress.map(([d]) => d);
    expect(out.progress.at(-1)).toEqual([8 * MiB, 8 * MiB]);
    for (let i = 1; i < done.length; i++) expect(done[i]!).toBeGreaterThan(done[i - 1]!);
    expect(out.error).toEqual({ isQcow2Error: true, instance: true, code: 'io', errno: 'ENOENT' });

    const src = join(dir, 'src.qcow2');
    for (const [copy, fmt] of [
      ['out.qcow2', 'qcow2'],
      ['flat.raw', 'raw'],
      ['stream.raw', 'raw'],
    ] as const) {
      const cmp = await qemuImg(['compare', '-f', 'qcow2', '-F', fmt, src, join(dir, copy)], { reject: false });
      expect(`${copy}: ${cmp.stdout.trim()}`).toBe(`${copy}: Images are identical.`);
    }
    const check = JSON.parse((await qemuImg(['check', '--output=json', join(dir, 'out.qcow2')])).stdout) as Record<string, number>;
    expect(check['compressed-clusters']).toBe(2);
    expect(check['allocated-clusters']).toBe(2);
  }, 120_000);

  it('refuses deep imports that the exports map does not list', async () => {
    const r = await node(['--input-type=module', '-e', "await import('qcow2-verified/dist/optimized/open.js')"]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
    const ok = await node(['--input-type=module', '-e', "const m = await import('qcow2-verified/package.json', { with: { type: 'json' } }); console.log(m.default.name)"]);
    expect(ok.stdout.trim()).toBe('qcow2-verified');
  });
});

const VERIFICATION_SCRIPT = `
import { openQcow2 } from 'qcow2-verified';
import * as v from 'qcow2-verified/verification';

// A device whose method \`name\` does nothing: an engine that must be caught.
const without = (name) => async (path, opts) => {
  const dev = await openQcow2(path, opts);
  return new Proxy(dev, {
    get(target, key) {
      if (key === name) return async () => {};
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
};
const summary = (d) => ({ failed: d.failed, numRuns: d.numRuns, error: d.failed ? String(d.errorInstance?.message ?? d.errorInstance) : '' });
const mine = { name: 'mine', concurrent: true, open: (path, opts) => openQcow2(path, opts) };
const out = {
  lanes: v.LANES.map((l) => l.name),
  campaignLanes: v.lanesFor('campaign').map((l) => l.name),
  onLane: summary(await v.runCampaign([v.lane('reference')], { runs: 3, seed: 11, endOnFailure: true })),
  onMine: summary(await v.runCampaign([mine, v.lane('reference')], { runs: 3, seed: 12, endOnFailure: true })),
  dropsWrites: summary(await v.runCampaign([{ name: 'drops-writes', concurrent: true, open: without('write') }], { runs: 20, seed: 13, endOnFailure: true })),
};
const workload = v.WORKLOADS.find((w) => w.name === 'alloc-cow');
const explored = await v.explore(workload, mine.open, { maxStates: 6, seed: 1 });
out.explored = { states: explored.distinct, failures: explored.failures.length };
const noFlush = await v.explore(workload, without('flush'), { maxStates: 12, seed: 1 });
out.noFlush = { failures: noFlush.failures.length, first: noFlush.failures[0]?.problems[0] ?? '' };
console.log(JSON.stringify(out));
`;

describe('the verification entry, imported by a user', () => {
  it('lists the lanes, runs the campaign and the crash explorer on a lane and on the user’s opener, and catches broken ones', async () => {
    await writeFile(join(project, 'verification-user.mjs'), VERIFICATION_SCRIPT);
    const r = await node(['verification-user.mjs']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out['lanes']).toEqual(['reference', 'optimized', 'optimized-tiny-caches', 'optimized-jitter', 'nbd', 'ublk']);
    expect(out['campaignLanes']).toEqual(['reference', 'optimized-jitter']);
    expect(out['onLane']).toEqual({ failed: false, numRuns: 3, error: '' });
    expect(out['onMine']).toEqual({ failed: false, numRuns: 3, error: '' });
    expect(out['dropsWrites']).toMatchObject({ failed: true });
    expect((out['dropsWrites'] as { error: string }).error).toMatch(/differs from the model|disagree|reads/);
    expect(out['explored']).toEqual({ states: 6, failures: 0 });
    expect((out['noFlush'] as { failures: number }).failures).toBeGreaterThan(0);
    expect((out['noFlush'] as { first: string }).first).toContain('flushed before the crash');
  }, 180_000);
});

const TYPED = `
import { createImage, errnoOf, isQcow2Error, openImage, type BlockDevice, type Errno, type StatusExtent } from 'qcow2-verified';
import { lane, runCampaign, type EngineLane } from 'qcow2-verified/verification';

export async function roundTrip(path: string): Promise<StatusExtent[]> {
  await createImage(path, { size: 1 << 20, clusterSize: 65536 });
  const dev: BlockDevice = await openImage(path);
  try {
    await dev.write(0, new Uint8Array(512).fill(1), { fua: true });
    const back: Uint8Array = await dev.read(OFFSET, 512);
    if (back[0] !== 1) throw new Error('not read back');
    await dev.writeZeroes(4096, 4096, { unmap: true, fast: false });
    return await dev.blockStatus(0, dev.virtualSize);
  } catch (err) {
    const errno: Errno = errnoOf(err);
    if (isQcow2Error(err)) console.error(err.describe(), errno);
    throw err;
  } finally {
    await dev.close();
  }
}

const reference: EngineLane = lane('reference');
export const campaign = () => runCampaign([reference], { runs: 1 });
`;

describe('TypeScript users', () => {
  const tsc = (file: string) =>
    node([
      join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      '--typeRoots',
      join(REPO, 'node_modules', '@types'),
      file,
    ]);

  it('get both entries’ types (a program using them compiles, and one passing a string as an offset does not)', async () => {
    await writeFile(join(project, 'good.ts'), TYPED.replace('OFFSET', '0'));
    await writeFile(join(project, 'bad.ts'), TYPED.replace('OFFSET', "'0'"));
    const [good, bad] = await Promise.all([tsc('good.ts'), tsc('bad.ts')]);
    expect(good.exitCode, good.stdout).toBe(0);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stdout).toMatch(/bad\.ts\(\d+,\d+\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'/);
    expect(bad.stdout.trim().split('\n')).toHaveLength(1);
  }, 120_000);
});

describe("README's library section", () => {
  async function section(): Promise<string[]> {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Use it as a library\n');
    expect(start).toBeGreaterThan(readme.indexOf('\n## The command\n'));
    const end = readme.indexOf('\n## ', start + 1);
    expect(readme.slice(end, end + 10)).toBe('\n## Layout');
    return [...readme.slice(start, end).matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  }

  it('shows examples/library.mjs and examples/verification.mjs verbatim', async () => {
    const blocks = await section();
    const files = (await readdir(join(REPO, 'examples'))).filter((f) => f.endsWith('.mjs')).sort();
    expect(files).toEqual(['library.mjs', 'verification.mjs']);
    expect(blocks).toEqual([await readFile(join(REPO, 'examples', 'library.mjs'), 'utf8'), await readFile(join(REPO, 'examples', 'verification.mjs'), 'utf8')]);
  });

  it('whose examples run in the fresh project', async () => {
    for (const f of ['library.mjs', 'verification.mjs']) await writeFile(join(project, f), await readFile(join(REPO, 'examples', f), 'utf8'));
    const lib = await node(['library.mjs']);
    expect(lib.exitCode, lib.stderr).toBe(0);
    expect(lib.stdout).toContain('read back: true');
    expect(lib.stdout).toContain('{ start: 1048576, length: 65536, zero: false, data: true, depth: 1 }');
    expect(lib.stdout).toContain('converted 100%');
    const dir = /done in (\S+)/.exec(lib.stdout)![1]!;
    try {
      const cmp = await qemuImg(['compare', join(dir, 'disk.qcow2'), join(dir, 'copy.qcow2')], { reject: false });
      expect(cmp.stdout.trim()).toBe('Images are identical.');
      const raw = await qemuImg(['compare', '-F', 'raw', join(dir, 'disk.qcow2'), join(dir, 'disk.raw')], { reject: false });
      expect(raw.stdout.trim()).toBe('Images are identical.');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const ver = await node(['verification.mjs']);
    expect(ver.exitCode, ver.stderr).toBe(0);
    expect(ver.stdout).toContain("'reference'");
    expect(ver.stdout).toContain('campaign: 3 runs passed');
  }, 120_000);
});
