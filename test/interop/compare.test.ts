/** `qcow2 compare` says what `qemu-img compare` says: the same line and the same exit code. */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';

let dir = '';
const f = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-compare-'));
  const make = async (name: string, fmt: string, size: string, cmds: string[]) => {
    await execa('qemu-img', ['create', '-q', '-f', fmt, f(name), size]);
    if (cmds.length) await execa('qemu-io', ['-f', fmt, ...cmds.flatMap((c) => ['-c', c]), f(name)]);
  };
  await make('a.qcow2', 'qcow2', '4M', ['write -P 1 0 1M', 'write -P 2 2M 4k']);
  await make('a.raw', 'raw', '4M', ['write -P 1 0 1M', 'write -P 2 2M 4k']);
  await make('b.qcow2', 'qcow2', '4M', ['write -P 1 0 1M', 'write -P 3 2M 100']);
  await make('big.qcow2', 'qcow2', '8M', ['write -P 1 0 1M', 'write -P 2 2M 4k']);
  await make('bigdirty.raw', 'raw', '8M', ['write -P 1 0 1M', 'write -P 2 2M 4k', 'write -P 9 6M 1']);
  await make('zeros.qcow2', 'qcow2', '4M', ['write -z 0 1M']);
  await make('empty.raw', 'raw', '4M', []);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PAIRS: [string, string[]][] = [
  ['identical across formats', ['a.qcow2', 'a.raw']],
  ['differing in a sector', ['a.qcow2', 'b.qcow2']],
  ['sizes differ, extra part zero', ['a.qcow2', 'big.qcow2']],
  ['sizes differ, extra part not zero', ['a.raw', 'bigdirty.raw']],
  ['strict mode on different sizes', ['-s', 'a.qcow2', 'big.qcow2']],
  ['explicit formats', ['-f', 'qcow2', '-F', 'raw', 'zeros.qcow2', 'empty.raw']],
  ['a missing image', ['a.qcow2', 'nope.qcow2']],
  ['quiet', ['-q', 'a.qcow2', 'b.qcow2']],
];

describe('qcow2 compare matches qemu-img compare', () => {
  for (const [name, args] of PAIRS) {
    it(name, async () => {
      const theirs = await execa('qemu-img', ['compare', ...args], { cwd: dir, reject: false });
      const ours = await qcow2(['compare', ...args], { cwd: dir });
      expect(ours.exitCode).toBe(theirs.exitCode);
      expect(ours.stdout).toBe(theirs.stdout);
      if (theirs.exitCode === 2) expect(ours.stderr).toMatch(/cannot open 'nope.qcow2'/);
    });
  }
});
