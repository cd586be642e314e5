/**
 * How the reference engine opens images: dirty images are repaired before any write, corrupt ones
 * are read-only, untrusted images do not get their file names followed, writes keep consistent
 * bitmaps and drop stale ones, and hostile backing chains are refused. QEMU judges the results.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Error } from '../../src/errors.js';
import { openReference } from '../../src/reference/open.js';
import { qcow2 } from '../support/cli.js';
import { firstDifference } from '../support/raw-compare.js';
import { getCorpusImage } from './corpus.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-open-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function copyOf(name: string): Promise<string> {
  const image = await getCorpusImage(name);
  const path = join(dir, `${name}-${Math.random().toString(36).slice(2)}.qcow2`);
  await copyFile(image.image, path);
  return path;
}

async function setByte(path: string, offset: number, update: (b: number) => number): Promise<void> {
  const fh = await open(path, 'r+');
  const buf = new Uint8Array(1);
  await fh.read(buf, 0, 1, offset);
  buf[0] = update(buf[0]!);
  await fh.write(buf, 0, 1, offset);
  await fh.close();
}

const sha = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

async function rejection(p: Promise<unknown>): Promise<Qcow2Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(Qcow2Error);
  return err as Qcow2Error;
}

describe('opening images', () => {
  it('repairs an image left dirty with lazy refcounts before writing, and clears the dirty bit', async () => {
    const path = await copyOf('v3-lazy-dirty');
    const expected = join(dir, 'dirty-expected.raw');
    await execa('qemu-img', ['convert', '-O', 'raw', path, expected]);
    expect((await execa('qemu-img', ['check', path], { reject: false })).exitCode).toBe(2); // QEMU: refcounts too low
    const dev = await openReference(path);
    await dev.write(3 * 65536, new Uint8Array(65536).fill(0x42));
    await dev.close();
    const check = await execa('qemu-img', ['check', path], { reject: false });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    expect(JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout)['dirty-flag']).toBe(false);
    const fh = await open(expected, 'r+');
    await fh.write(new Uint8Array(65536).fill(0x42), 0, 65536, 3 * 65536);
    await fh.close();
    const reread = await openReference(path, { readOnly: true });
    expect(await firstDifference(reread, expected)).toBe(-1);
    await reread.close();
  });

  it('opens an image marked corrupt only read-only, and never writes to it', async () => {
    const path = await copyOf('v3-c64k');
    await setByte(path, 79, (b) => b | 2);
    const before = await sha(path);
    const err = await rejection(openReference(path));
    expect(err.code).toBe('corrupt');
    expect(err.field).toBe('incompatible_features');
    const ro = await openReference(path, { readOnly: true });
    expect((await ro.read(0, 512)).byteLength).toBe(512);
    await expect(ro.write(0, new Uint8Array(512))).rejects.toThrow(/corrupt/);
    await ro.close();
    const cli = await qcow2(['io', '-c', 'write -P 1 0 4k', path]);
    expect(cli.exitCode).not.toBe(0);
    expect(await sha(path)).toBe(before);
  });

  it('refuses to follow backing and data file names of an untrusted image', async () => {
    const backed = await getCorpusImage('v3-backing-qcow2');
    const e1 = await rejection(openReference(backed.image, { readOnly: true, followFileNames: false }));
    expect(e1.code).toBe('unsupported');
    expect(e1.message).toMatch(/backing file .* untrusted/);
    const withData = await getCorpusImage('v3-datafile');
    const e2 = await rejection(openReference(withData.image, { readOnly: true, followFileNames: false }));
    expect(e2.message).toMatch(/data file .* untrusted/);
    // A plain image opens the same either way.
    const plain = await getCorpusImage('v3-c64k');
    await (await openReference(plain.image, { readOnly: true, followFileNames: false })).close();
  });

  it('keeps consistent bitmaps through a write: autoclear bit 0 stays set, the same bitmaps, check clean', async () => {
    const path = await copyOf('v3-bitmaps');
    const before = JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout)['format-specific'].data.bitmaps;
    expect(before).toHaveLength(2);
    expect((await qcow2(['io', '-c', 'write -P 7 0 64k', path])).exitCode).toBe(0);
    const fh = await open(path, 'r');
    const autoclear = new Uint8Array(8);
    await fh.read(autoclear, 0, 8, 88);
    await fh.close();
    expect(autoclear[7]! & 1).toBe(1);
    const info = await execa('qemu-img', ['info', '--output=json', path]);
    expect(info.stderr).toBe('');
    expect(JSON.parse(info.stdout)['format-specific'].data.bitmaps).toEqual(before);
    const check = await execa('qemu-img', ['check', path], { reject: false });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  });

  it('drops stale bitmaps (autoclear bit 0 clear) on the first write, leaking what QEMU leaks', async () => {
    const ours = await copyOf('v3-bitmaps');
    await setByte(ours, 95, (b) => b & ~1);
    const theirs = `${ours}.qemu.qcow2`;
    await copyFile(ours, theirs);
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 7 0 64k', theirs]);
    expect((await qcow2(['io', '-c', 'write -P 7 0 64k', ours])).exitCode).toBe(0);
    for (const path of [ours, theirs]) {
      expect(JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout)['format-specific'].data.bitmaps).toBeUndefined();
    }
    const leaks = async (path: string) => JSON.parse((await execa('qemu-img', ['check', '--output=json', path], { reject: false })).stdout) as { leaks?: number; corruptions?: number };
    const [a, b] = [await leaks(ours), await leaks(theirs)];
    expect(a.corruptions ?? 0).toBe(0);
    expect(a.leaks).toBeGreaterThan(0);
    expect(a.leaks).toBe(b.leaks);
  });

  it('never writes to an image opened read-only', async () => {
    const path = await copyOf('v3-snapshots');
    const before = await sha(path);
    const r = await qcow2(['io', '-r', '-c', 'write -P 1 0 4k', '-c', 'discard 0 64k', path]);
    expect(r.exitCode).toBe(1);
    const ro = await openReference(path, { readOnly: true });
    await expect(ro.createSnapshot('x')).rejects.toThrow(/read-only/);
    await ro.close();
    expect(await sha(path)).toBe(before);
  });

  it('refuses a backing chain that loops, and protocol-style backing names', async () => {
    const loop = join(dir, 'loop.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', 'loop.qcow2', '-F', 'qcow2', loop, '1M']);
    const e1 = await rejection(openReference(loop, { readOnly: true }));
    expect(e1.message).toMatch(/backing chain deeper than/);
    const proto = join(dir, 'proto.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1/x', '-F', 'raw', proto, '1M']);
    const e2 = await rejection(openReference(proto, { readOnly: true }));
    expect(e2.message).toMatch(/not a plain file name/);
  });
});
