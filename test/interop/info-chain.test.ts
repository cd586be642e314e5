/**
 * `qcow2 info --backing-chain` against `qemu-img info --backing-chain` (QEMU 7.2), on the same
 * files: chains of one to three images (qcow2 over qcow2 over raw; relative names, names with `../`,
 * absolute names; the top image named with a folder and absolutely; v2 and snapshots on the way),
 * human and JSON, byte for byte; and the chains qemu-img cannot follow (a missing backing file, a
 * loop, a backing file not in its recorded format, a missing image): the same exit status, nothing
 * on stdout, qemu-img's message inside ours. Plain `info` on a raw image too.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

let dir = '';

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (file: string, ...cmds: string[]) => execa('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

async function buildChains(): Promise<void> {
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'base.raw'), Buffer.alloc(3 * 1024 * 1024 - 100, 0x41));
  // qcow2 over raw (relative name with ../), then qcow2 over that (relative name with sub/)
  await img('create', '-q', '-f', 'qcow2', '-b', '../base.raw', '-F', 'raw', 'sub/mid.qcow2');
  await io('sub/mid.qcow2', 'write -P 0x42 0 64k');
  await img('snapshot', '-c', 'snap1', 'sub/mid.qcow2');
  await img('create', '-q', '-f', 'qcow2', '-b', 'sub/mid.qcow2', '-F', 'qcow2', 'top.qcow2');
  await io('top.qcow2', 'write -P 0x43 1M 64k');
  // absolute names all the way
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'abs-base.qcow2', '2M');
  await img('create', '-q', '-f', 'qcow2', '-b', join(dir, 'abs-base.qcow2'), '-F', 'qcow2', 'sub/abs-mid.qcow2');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', '-b', join(dir, 'sub/abs-mid.qcow2'), '-F', 'qcow2', 'abs-top.qcow2');
  // two qcow2 images in one folder
  await img('create', '-q', '-f', 'qcow2', 'sub/b.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 'sub/a.qcow2');
  // broken chains
  await img('create', '-q', '-f', 'qcow2', '-u', '-b', 'gone.qcow2', '-F', 'qcow2', 'missing.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'missing.qcow2', '-F', 'qcow2', '-u', 'over-missing.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-u', '-b', 'loop2.qcow2', '-F', 'qcow2', 'loop1.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-u', '-b', 'loop1.qcow2', '-F', 'qcow2', 'loop2.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-u', '-b', 'base.raw', '-F', 'qcow2', 'wrong-format.qcow2', '1M');
}

async function same(args: string[]): Promise<void> {
  const q = await execa('qemu-img', ['info', ...args], { cwd: dir, reject: false });
  const r = await qcow2(['info', ...args], { cwd: dir });
  expect(r.stdout, r.stderr).toBe(q.stdout);
  expect(r.exitCode).toBe(q.exitCode);
  if (q.exitCode === 0) {
    expect(r.stderr).toBe('');
  } else {
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^qcow2 info: usage: [^\n]*$/);
    for (const line of q.stderr.split('\n')) {
      if (line.startsWith('qemu-img: ')) expect(r.stderr).toContain(line.slice('qemu-img: '.length));
    }
  }
}

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-info-chain-'));
  await buildChains();
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 info --backing-chain matches qemu-img info --backing-chain', () => {
  const IMAGES = [
    ['top.qcow2'],
    ['sub/mid.qcow2'],
    ['base.raw'],
    ['-f', 'raw', 'base.raw'],
    ['-f', 'qcow2', 'top.qcow2'],
    ['-f', 'raw', 'top.qcow2'],
    ['abs-top.qcow2'],
    ['sub/a.qcow2'],
    ['ABS/top.qcow2'],
  ];
  for (const image of IMAGES) {
    it(image.join(' '), async () => {
      const args = image.map((a) => a.replace('ABS/', `${dir}/`));
      await same(['--backing-chain', ...args]);
      await same(['--backing-chain', '--output=json', ...args]);
      await same(['--output=json', ...args]);
      await same(args);
    });
  }
});

describe.concurrent('qcow2 info --backing-chain fails where qemu-img fails', () => {
  const BROKEN = [['missing.qcow2'], ['over-missing.qcow2'], ['loop1.qcow2'], ['wrong-format.qcow2'], ['nothere.qcow2'], ['-f', 'qcow2', 'base.raw']];
  for (const image of BROKEN) {
    it(image.join(' '), async () => {
      await same(['--backing-chain', ...image]);
      await same(['--backing-chain', '--output=json', ...image]);
    });
  }
  it('plain info of an image whose backing file is missing still works', async () => {
    await same(['missing.qcow2']);
  });
});
