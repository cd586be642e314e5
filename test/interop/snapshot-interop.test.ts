/**
 * Snapshots both ways: what `qcow2 snapshot` makes, qemu-img lists and applies; what qemu-img
 * makes, we list, apply and delete. QEMU's check finds every resulting image clean, and contents
 * are compared with raw files written by qemu-io with the same data (QEMU as the oracle).
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';

const OPTION_SETS = [
  'compat=0.10,cluster_size=65536',
  'compat=1.1,cluster_size=4096,refcount_bits=4',
  'compat=1.1,cluster_size=65536,extended_l2=on',
  'compat=1.1,cluster_size=512,refcount_bits=64',
];
const SIZE = 4 * 1024 * 1024;
/** Three generations of guest data, as qemu-io commands. */
const GENERATIONS = [
  ['write -P 0x11 0 1M', 'write -P 0x12 1536k 100k'],
  ['write -P 0x21 512k 1M', 'write -z 3M 64k'],
  ['write -P 0x31 100 300k', 'discard 2M 1M'],
];

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-snap-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function qemuIo(format: 'raw' | 'qcow2', path: string, cmds: string[]) {
  await execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), path]);
}

/** Raw files holding the guest state after each generation (written by qemu-io on raw). */
async function rawStates(tag: string): Promise<string[]> {
  const states: string[] = [];
  const raw = join(dir, `${tag}-state.raw`);
  await execa('qemu-img', ['create', '-q', '-f', 'raw', raw, String(SIZE)]);
  for (const [i, gen] of GENERATIONS.entries()) {
    // A raw discard zeroes; on qcow2 (whole clusters here) it reads as zeros too (v3), or
    // unallocated with no backing (v2): the same guest bytes.
    await qemuIo('raw', raw, gen);
    const copy = join(dir, `${tag}-gen${i}.raw`);
    await copyFile(raw, copy);
    states.push(copy);
  }
  return states;
}

async function expectSameContent(image: string, raw: string) {
  const r = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, raw], { reject: false });
  expect(r.stdout + r.stderr).toContain('Images are identical.');
}

async function expectClean(image: string) {
  const r = await execa('qemu-img', ['check', image], { reject: false });
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
}

describe('snapshots made by us, judged by qemu-img', () => {
  for (const [k, opts] of OPTION_SETS.entries()) {
    it(opts, async () => {
      const states = await rawStates(`ours${k}`);
      const image = join(dir, `ours${k}.qcow2`);
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', opts, image, String(SIZE)]);
      for (const [i, gen] of GENERATIONS.entries()) {
        expect((await qcow2(['io', ...gen.flatMap((c) => ['-c', c]), image])).exitCode).toBe(0);
        if (i < 2) expect((await qcow2(['snapshot', '-c', `s${i}`, image])).exitCode).toBe(0);
      }
      await expectClean(image);
      const ours = await qcow2(['snapshot', '-l', image]);
      const theirs = await execa('qemu-img', ['snapshot', '-l', image]);
      expect(ours.stdout).toBe(theirs.stdout);
      await expectSameContent(image, states[2]!);
      for (const i of [0, 1]) {
        const copy = join(dir, `ours${k}-apply${i}.qcow2`);
        await copyFile(image, copy);
        await execa('qemu-img', ['snapshot', '-a', `s${i}`, copy]);
        await expectClean(copy);
        await expectSameContent(copy, states[i]!);
      }
    }, 300_000);
  }
});

describe('snapshots made by qemu-img, used by us', () => {
  for (const [k, opts] of OPTION_SETS.entries()) {
    it(opts, async () => {
      const states = await rawStates(`theirs${k}`);
      const image = join(dir, `theirs${k}.qcow2`);
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', opts, image, String(SIZE)]);
      for (const [i, gen] of GENERATIONS.entries()) {
        await qemuIo('qcow2', image, gen);
        if (i < 2) await execa('qemu-img', ['snapshot', '-c', `s${i}`, image]);
      }
      const ours = await qcow2(['snapshot', '-l', image]);
      const theirs = await execa('qemu-img', ['snapshot', '-l', image]);
      expect(ours.stdout).toBe(theirs.stdout);
      for (const i of [0, 1]) {
        const copy = join(dir, `theirs${k}-apply${i}.qcow2`);
        await copyFile(image, copy);
        expect((await qcow2(['snapshot', '-a', `s${i}`, copy])).exitCode).toBe(0);
        await expectClean(copy);
        await expectSameContent(copy, states[i]!);
        // Writing after the revert must not disturb the other snapshot.
        expect((await qcow2(['io', '-c', 'write -P 0x77 0 2M', copy])).exitCode).toBe(0);
        await execa('qemu-img', ['snapshot', '-a', `s${1 - i}`, copy]);
        await expectClean(copy);
        await expectSameContent(copy, states[1 - i]!);
      }
      expect((await qcow2(['snapshot', '-d', 's0', image])).exitCode).toBe(0);
      await expectClean(image);
      expect((await execa('qemu-img', ['snapshot', '-l', image])).stdout).not.toContain(' s0 ');
      await expectSameContent(image, states[2]!);
      const missing = await qcow2(['snapshot', '-d', 'nope', image]);
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr).toContain("Could not delete snapshot 'nope'");
    }, 300_000);
  }
});
