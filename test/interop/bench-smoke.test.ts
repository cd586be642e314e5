/**
 * `qcow2 bench` and the benchmark runner, as smoke tests: the command runs and prints qemu-img
 * bench's first line (same format, checked against qemu-img's own) and its `Run completed in`
 * line; `bench/run.mjs --quick` runs one benchmark and prints a table row. No timing is asserted.
 */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench } from '../../src/cli/bench.js';
import type { CliContext } from '../../src/cli/context.js';
import { isQcow2Error } from '../../src/errors.js';
import { qcow2, REPO } from '../support/cli.js';
import { qemuImg, requireTool } from '../support/tools.js';

const SENDING = /^Sending \d+ (read|write) requests, \d+ bytes each, \d+ in parallel \(starting at offset \d+, step size \d+\)$/;
const COMPLETED = /^Run completed in \d+\.\d{3} seconds\.$/;

let dir: string;
let image: string;

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-bench-'));
  image = join(dir, 'a.qcow2');
  await qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 1 0 4M', image]);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function ourBench(args: string[]): Promise<{ code: number; lines: string[]; stderr: string }> {
  let out = '';
  let err = '';
  const ctx: CliContext = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTTY: false };
  let code: number;
  try {
    code = await bench(args, ctx);
  } catch (e) {
    if (!isQcow2Error(e)) throw e;
    err += e.describe();
    code = 1;
  }
  return { code, lines: out.split('\n').filter((l) => l !== ''), stderr: err };
}

describe('qcow2 bench', () => {
  const cases: string[][] = [
    ['-c', '2000', '-d', '16'],
    ['-c', '0x200', '-d', '4', '-s', '1k', '-S', '1M', '-o', '4k'],
    ['-c', '500', '-d', '8', '-w', '--pattern=0x5a', '--flush-interval=100'],
    ['-c', '100', '-d', '1', '-w', '-t', 'writethrough'],
  ];
  for (const args of cases) {
    it(`prints qemu-img bench's lines for ${args.join(' ')}`, async () => {
      const ours = await ourBench(['-f', 'qcow2', ...args, image]);
      expect(ours.stderr).toBe('');
      expect(ours.code).toBe(0);
      const qemu = await qemuImg(['bench', '-f', 'qcow2', ...args, image]);
      const qemuLines = qemu.stdout.split('\n');
      expect(ours.lines[0]).toMatch(SENDING);
      expect(ours.lines.slice(0, -1)).toEqual(qemuLines.slice(0, -1));
      expect(ours.lines.at(-1)).toMatch(COMPLETED);
      expect(qemuLines.at(-1)).toMatch(COMPLETED);
    });
  }

  it('writes the pattern byte where the requests go', async () => {
    const fresh = join(dir, 'pattern.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', fresh, '4M']);
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 1 0 4M', fresh]);
    const ours = await ourBench(['-f', 'qcow2', '-w', '-c', '16', '-d', '4', '-s', '64k', '--pattern=0xa5', fresh]);
    expect(ours.code).toBe(0);
    const read = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0xa5 0 1M', '-c', 'read -P 1 1M 3M', fresh]);
    expect(read.stdout).not.toMatch(/Pattern verification failed/);
    const check = await qemuImg(['check', fresh], { reject: false });
    expect(check.exitCode).toBe(0);
  });

  it('refuses O_DIRECT cache modes and other aio backends as unsupported', async () => {
    for (const args of [['-t', 'none'], ['-t', 'directsync'], ['-i', 'io_uring'], ['-i', 'native'], ['-n']]) {
      const r = await ourBench([...args, image]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^unsupported: /);
    }
    const threads = await ourBench(['-i', 'threads', '-c', '10', image]);
    expect(threads.code).toBe(0);
  });

  it('rejects what qemu-img bench rejects', async () => {
    for (const args of [['-c', '-1'], ['--pattern=256'], ['-s', '3000000000'], ['--flush-interval=100'], ['-w', '-d', '16', '--flush-interval=8'], ['-t', 'bogus']]) {
      const r = await ourBench([...args, image]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^usage: /);
      const q = await qemuImg(['bench', ...args, image], { reject: false });
      expect(q.exitCode).toBe(1);
    }
  });

  it('fails a request that runs past the end, as QEMU does', async () => {
    const r = await ourBench(['-c', '10', '-s', '2M', '-S', '3M', image]);
    expect(r.code).toBe(1);
    const q = await qemuImg(['bench', '-c', '10', '-s', '2M', '-S', '3M', image], { reject: false });
    expect(q.exitCode).toBe(1);
  });

  it('runs through ./bin/qcow2 once main.ts registers it', async () => {
    const help = await qcow2(['help']);
    if (!/ {2}bench /.test(help.stdout)) return; // not registered yet: the in-process tests above stand in
    const r = await qcow2(['bench', '-c', '100', '-d', '4', image]);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines[0]).toBe('Sending 100 read requests, 4096 bytes each, 4 in parallel (starting at offset 0, step size 4096)');
    expect(lines.at(-1)).toMatch(COMPLETED);
  });
});

describe('bench/run.mjs', () => {
  it('--quick runs one benchmark and prints its table row', async () => {
    const r = await execa(process.execPath, [join(REPO, 'bench', 'run.mjs'), '--quick', 'read-4k-d16'], {
      cwd: REPO,
      reject: false,
      timeout: 300_000,
      env: { QCOW2_BENCH_CACHE: join(dir, 'bench-cache') },
    });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^\| benchmark +\| ours \(median\) +\| peer \(median\) +\| ratio +\| goal +\| met\? \|$/m);
    expect(r.stdout).toMatch(/^\| read-4k-d16 +\| [0-9.]+k? req\/s +\| [0-9.]+[kM]? req\/s +\| [0-9.]+x +\| >= [0-9.]+x +\| (yes|no) +\|$/m);
  }, 300_000);

  it('refuses an unknown benchmark name', async () => {
    const r = await execa(process.execPath, [join(REPO, 'bench', 'run.mjs'), '--quick', 'no-such-bench'], { cwd: REPO, reject: false });
    expect(r.exitCode).toBe(2);
  });
});
