/**
 * `qcow2 dd` against `qemu-img dd` (QEMU 7.2): for every input (qcow2 v2 and v3 with data, zero and
 * compressed clusters, small clusters, a backing file, an odd size; raw files) and every operand
 * set (block sizes with and without suffixes, count, skip, both past the end, -O raw and qcow2),
 * qemu-img and we write separate outputs from the same input. Then:
 *  - same exit status, same stdout, and the same stderr once qemu-img's `qemu-img: ` prefix is ours;
 *  - `qemu-img compare` finds the two outputs identical;
 *  - `qemu-img info` gives the same format and virtual size; `qemu-img check` finds ours clean.
 * Operands qemu-img refuses are refused alike: same exit status, no stdout, each of qemu-img's
 * messages inside ours, and an output created only where qemu-img created one.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (format: string, file: string, ...cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

async function buildFixtures(): Promise<void> {
  await img('create', '-q', '-f', 'qcow2', 'v3.qcow2', '3M');
  await io('qcow2', 'v3.qcow2', 'write -P 0x11 0 64k', 'write -z 64k 64k', 'write -c -P 0x12 128k 128k', 'write -P 0x13 1049088 4k', 'write -P 0x14 3070k 2k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '2M');
  await io('qcow2', 'v2.qcow2', 'write -P 0x21 4k 60k', 'write -c -P 0x22 256k 64k', 'write -z 512k 64k', 'write -P 0x23 1536k 512k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', 'small.qcow2', '1M');
  await io('qcow2', 'small.qcow2', 'write -P 0x31 0 3k', 'write -c -P 0x32 8k 4k', 'write -z 16k 8k', 'write -P 0x33 1000k 24k');
  await img('create', '-q', '-f', 'qcow2', 'base.qcow2', '2M');
  await io('qcow2', 'base.qcow2', 'write -P 0x41 0 2M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'overlay.qcow2', '2M');
  await io('qcow2', 'overlay.qcow2', 'write -P 0x42 64k 64k', 'write -z 512k 64k', 'write -c -P 0x43 1M 64k');
  await img('create', '-q', '-f', 'qcow2', 'odd.qcow2', '1000');
  await io('qcow2', 'odd.qcow2', 'write -P 0x51 0 512');
  await writeFile(join(dir, 'plain.raw'), Buffer.alloc(1001, 0x61));
  await writeFile(join(dir, 'sparse.raw'), '');
  await truncate(join(dir, 'sparse.raw'), 4 << 20);
  await io('raw', 'sparse.raw', 'write -P 0x62 1M 64k', 'write -P 0x63 3145000 1000');
}

const INPUTS = ['v3.qcow2', 'v2.qcow2', 'small.qcow2', 'overlay.qcow2', 'odd.qcow2', 'plain.raw', 'sparse.raw'];

/** Operand sets; IN and OUT stand for the input and the output. */
const OPERANDS: string[][] = [
  ['if=IN', 'of=OUT'],
  ['bs=4k', 'if=IN', 'of=OUT'],
  ['bs=1M', 'if=IN', 'of=OUT'],
  ['bs=4096', 'count=7', 'if=IN', 'of=OUT'],
  ['bs=1.5k', 'count=5', 'skip=1', 'if=IN', 'of=OUT'],
  ['bs=64k', 'count=3', 'if=IN', 'of=OUT'],
  ['bs=1k', 'skip=5', 'if=IN', 'of=OUT'],
  ['bs=4k', 'count=10', 'skip=2', 'if=IN', 'of=OUT'],
  ['bs=1M', 'skip=100', 'if=IN', 'of=OUT'],
  ['bs=1M', 'count=100', 'if=IN', 'of=OUT'],
  ['skip=2', 'count=1', 'if=IN', 'of=OUT'],
  ['count=8', 'skip=3', 'if=IN', 'of=OUT'],
  ['-O', 'qcow2', 'if=IN', 'of=OUT'],
  ['-O', 'qcow2', 'bs=64k', 'skip=1', 'count=9', 'if=IN', 'of=OUT'],
  ['-O', 'qcow2', 'bs=512', 'skip=1', 'if=IN', 'of=OUT'],
  ['-O', 'qcow2', 'bs=1M', 'skip=99', 'if=IN', 'of=OUT'],
  ['-O', 'raw', 'of=OUT', 'bs=2k', 'if=IN'],
  ['bs=4k', 'skip=1E', 'if=IN', 'of=OUT'],
  ['bs=1M', 'count=1E', 'if=IN', 'of=OUT'],
];

const REFUSED: string[][] = [
  ['bs=0', 'if=IN', 'of=OUT'],
  ['bs=abc', 'if=IN', 'of=OUT'],
  ['bs=3G', 'if=IN', 'of=OUT'],
  ['bs=1k', 'count=-1', 'if=IN', 'of=OUT'],
  ['count=8E', 'if=IN', 'of=OUT'],
  ['skip=x', 'if=IN', 'of=OUT'],
  ['foo=1', 'if=IN', 'of=OUT'],
  ['if=IN', 'foo', 'of=OUT'],
  ['if=IN'],
  ['of=OUT'],
  [],
  ['if=nope.qcow2', 'of=OUT'],
  ['if=', 'of=OUT'],
  ['-O', 'bogus', 'if=IN', 'of=OUT'],
  ['-f', 'qcow2', 'if=plain.raw', 'of=OUT'],
  ['bs=1k', 'if=IN', 'of=OUT', 'bs=0'],
];

const withNames = (args: string[], input: string, output: string) => args.map((a) => a.replace(/^if=IN$/, `if=${input}`).replace(/^of=OUT$/, `of=${output}`));

const q = (args: string[]) => execa('qemu-img', ['dd', ...args], { cwd: dir, reject: false });
const r = (args: string[]) => qcow2(['dd', ...args], { cwd: dir });

async function info(image: string): Promise<{ format: string; size: number }> {
  const out = await img('info', '--output=json', image);
  const parsed = JSON.parse(out.stdout) as { format: string; 'virtual-size': number };
  return { format: parsed.format, size: parsed['virtual-size'] };
}

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-dd-'));
  await buildFixtures();
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 dd does what qemu-img dd does', () => {
  for (const input of INPUTS) {
    for (const ops of OPERANDS) {
      it(`${input}: ${ops.join(' ')}`, async ({ expect }) => {
        const k = n++;
        const theirs = `t${k}.out`;
        const ours = `o${k}.out`;
        const qr = await q(withNames(ops, input, theirs));
        expect(qr.exitCode, qr.stderr).toBe(0);
        const rr = await r(withNames(ops, input, ours));
        expect(rr.exitCode, rr.stderr).toBe(0);
        expect(rr.stdout).toBe(qr.stdout);
        expect(rr.stderr).toBe(qr.stderr.replaceAll('qemu-img: ', 'qcow2 dd: '));
        const format = ops.includes('qcow2') ? 'qcow2' : 'raw';
        const [it, io2] = await Promise.all([info(theirs), info(ours)]);
        expect(io2).toEqual(it);
        expect(io2.format).toBe(format);
        const cmp = await execa('qemu-img', ['compare', '-f', format, '-F', format, theirs, ours], { cwd: dir, reject: false });
        expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
        if (format === 'qcow2') {
          const check = await execa('qemu-img', ['check', ours], { cwd: dir, reject: false });
          expect(check.exitCode, check.stdout).toBe(0);
        }
      });
    }
  }
});

describe.concurrent('qcow2 dd refuses what qemu-img dd refuses', () => {
  for (const ops of REFUSED) {
    it(ops.join(' ') || '(no operands)', async ({ expect }) => {
      const k = n++;
      const theirs = `t${k}.out`;
      const ours = `o${k}.out`;
      const qr = await q(withNames(ops, 'v3.qcow2', theirs));
      expect(qr.exitCode).toBe(1);
      const rr = await r(withNames(ops, 'v3.qcow2', ours));
      expect(rr.exitCode).toBe(1);
      expect(rr.stdout).toBe(qr.stdout);
      expect(rr.stderr).toMatch(/^qcow2 dd: usage: [^\n]*$/);
      for (const line of qr.stderr.split('\n')) {
        if (line.startsWith('qemu-img: ')) expect(rr.stderr).toContain(line.slice('qemu-img: '.length));
      }
      expect(existsSync(join(dir, ours))).toBe(existsSync(join(dir, theirs)));
    });
  }
});
