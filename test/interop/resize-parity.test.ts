/**
 * `qcow2 resize` against `qemu-img resize` (QEMU 7.2): the same image is copied twice, qemu-img
 * resizes one copy and we resize the other, with the same arguments. Then:
 *  - same stdout ("Image resized.", nothing with -q) and exit status;
 *  - `qemu-img info` gives the same virtual size; `qemu-img check` finds ours clean (qcow2);
 *  - `qemu-img compare` finds the two identical (strictly: -s, same allocation too, for raw);
 *  - `qemu-img map --output=json` is the same for both (raw images, every preallocation mode; qcow2
 *    images: with host offsets left out and entries merged, as clusters may be placed elsewhere).
 * Command lines qemu-img refuses are refused alike: same exit status, no stdout, and each of
 * qemu-img's messages inside ours. What we do not implement (qcow2 preallocation falloc and full,
 * metadata over a backing file or with extended L2, images with data_file_raw) is refused with a
 * typed error and leaves the image untouched. Persistent bitmaps come out as QEMU's (`qemu-img info`).
 * Shrunk qcow2 images are also grown back by qemu-img and compared again (nothing of the cut area
 * comes back), and their snapshots still read as before.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { bitmapsOf, dirtyMap, mapWithoutOffsets } from '../support/qemu-views.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (format: string, file: string, ...cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

/** Fixtures, built once; each case works on its own two copies. */
async function buildFixtures(): Promise<void> {
  await img('create', '-q', '-f', 'qcow2', 'plain.qcow2', '1M');
  await io('qcow2', 'plain.qcow2', 'write -P 0x11 0 64k', 'write -P 0x12 1020k 4k');
  await img('create', '-q', '-f', 'qcow2', 'odd.qcow2', '1000');
  await io('qcow2', 'odd.qcow2', 'write -P 0x13 0 512');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'small.qcow2', '3M');
  await io('qcow2', 'small.qcow2', 'write -P 0x14 0 8k', 'write -P 0x15 2M 4k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', 'extl2.qcow2', '2M');
  await io('qcow2', 'extl2.qcow2', 'write -P 0x16 2k 2k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '1M');
  await io('qcow2', 'v2.qcow2', 'write -P 0x17 0 64k');
  await img('create', '-q', '-f', 'qcow2', 'compressed.qcow2', '1M');
  await io('qcow2', 'compressed.qcow2', 'write -c -P 0x18 0 64k');
  await img('create', '-q', '-f', 'qcow2', 'snap.qcow2', '1M');
  await io('qcow2', 'snap.qcow2', 'write -P 0x19 0 64k');
  await img('snapshot', '-c', 's1', 'snap.qcow2');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2snap.qcow2', '1M');
  await img('snapshot', '-c', 's1', 'v2snap.qcow2');
  // A backing file larger than the overlay: the grown area must read as zeros, not as the backing.
  await img('create', '-q', '-f', 'qcow2', 'base.qcow2', '4M');
  await io('qcow2', 'base.qcow2', 'write -P 0x21 0 4M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'overlay.qcow2', '1M');
  await io('qcow2', 'overlay.qcow2', 'write -P 0x22 64k 64k');
  await img('create', '-q', '-f', 'qcow2', 'bitmaps.qcow2', '1M');
  await img('bitmap', '--add', 'bitmaps.qcow2', 'b0');
  await img('bitmap', '--add', '-g', '512', 'bitmaps.qcow2', 'fine');
  await io('qcow2', 'bitmaps.qcow2', 'write -P 0x23 0 3k');
  await io('qcow2', 'bitmaps.qcow2', 'write -P 0x24 900k 100k');
  // A writer killed with the image open leaves its bitmap in_use: QEMU refuses to resize then.
  await img('create', '-q', '-f', 'qcow2', 'inuse.qcow2', '1M');
  await img('bitmap', '--add', 'inuse.qcow2', 'b0');
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q 0 4k', '-c', 'sigraise 9', 'inuse.qcow2'], { cwd: dir, reject: false });
  await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=plain-data.raw,data_file_raw=on', 'datafileraw.qcow2', '1M');
  await writeFile(join(dir, 'plain.raw'), Buffer.alloc(1001, 0x31));
  await writeFile(join(dir, 'sparse.raw'), '');
  await truncate(join(dir, 'sparse.raw'), 4 << 20);
  await io('raw', 'sparse.raw', 'write -P 0x32 1M 64k');
}

/** Two fresh copies of `fixture` (qemu-img's, ours), with the image's own name in each directory. */
async function copies(fixture: string): Promise<{ theirs: string; ours: string }> {
  const k = n++;
  const ext = fixture.slice(fixture.lastIndexOf('.'));
  const theirs = `t${k}${ext}`;
  const ours = `o${k}${ext}`;
  await copyFile(join(dir, fixture), join(dir, theirs));
  await copyFile(join(dir, fixture), join(dir, ours));
  return { theirs, ours };
}

const q = (args: string[]) => execa('qemu-img', ['resize', ...args], { cwd: dir, reject: false });
const r = (args: string[]) => qcow2(['resize', ...args], { cwd: dir });

/** `args` with IMAGE standing for the image. */
const withImage = (args: string[], image: string) => args.map((a) => (a === 'IMAGE' ? image : a));

async function virtualSize(image: string, format: string): Promise<number> {
  const out = await img('info', '-f', format, '--output=json', image);
  return (JSON.parse(out.stdout) as { 'virtual-size': number })['virtual-size'];
}

interface Case {
  fixture: string;
  args: string[];
}

/** Grown and shrunk. */
const RESIZED: Case[] = [
  { fixture: 'bitmaps.qcow2', args: ['IMAGE', '2M'] },
  { fixture: 'bitmaps.qcow2', args: ['--shrink', 'IMAGE', '512k'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '+3M'] },
  { fixture: 'plain.qcow2', args: ['-q', 'IMAGE', '2G'] },
  { fixture: 'plain.qcow2', args: ['-f', 'qcow2', 'IMAGE', '+512'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '1M'] },
  { fixture: 'plain.qcow2', args: ['--preallocation=off', 'IMAGE', '5M'] },
  { fixture: 'plain.qcow2', args: ['--shrink', 'IMAGE', '+64k'] },
  { fixture: 'odd.qcow2', args: ['IMAGE', '+1M'] },
  { fixture: 'small.qcow2', args: ['IMAGE', '100M'] },
  { fixture: 'extl2.qcow2', args: ['IMAGE', '+10M'] },
  { fixture: 'v2.qcow2', args: ['IMAGE', '+1G'] },
  { fixture: 'compressed.qcow2', args: ['IMAGE', '+1M'] },
  { fixture: 'snap.qcow2', args: ['IMAGE', '3M'] },
  { fixture: 'overlay.qcow2', args: ['IMAGE', '3M'] },
  { fixture: 'overlay.qcow2', args: ['IMAGE', '8M'] },
  { fixture: 'plain.qcow2', args: ['--preallocation=metadata', 'IMAGE', '5M'] },
  { fixture: 'plain.qcow2', args: ['--preallocation=metadata', 'IMAGE', '3333k'] },
  { fixture: 'odd.qcow2', args: ['--preallocation=metadata', 'IMAGE', '+1M'] },
  { fixture: 'small.qcow2', args: ['--preallocation=metadata', 'IMAGE', '20M'] },
  { fixture: 'v2.qcow2', args: ['--preallocation=metadata', 'IMAGE', '+3M'] },
  { fixture: 'snap.qcow2', args: ['--preallocation=metadata', 'IMAGE', '2M'] },
  { fixture: 'compressed.qcow2', args: ['--preallocation=metadata', 'IMAGE', '1536k'] },
  { fixture: 'plain.qcow2', args: ['--shrink', 'IMAGE', '512k'] },
  { fixture: 'plain.qcow2', args: ['--shrink', 'IMAGE', '-4k'] },
  { fixture: 'plain.qcow2', args: ['--shrink', '-q', 'IMAGE', '1024'] },
  { fixture: 'small.qcow2', args: ['--shrink', 'IMAGE', '1M'] },
  { fixture: 'small.qcow2', args: ['--shrink', 'IMAGE', '6k'] },
  { fixture: 'extl2.qcow2', args: ['--shrink', 'IMAGE', '1k'] },
  { fixture: 'v2.qcow2', args: ['--shrink', 'IMAGE', '32k'] },
  { fixture: 'compressed.qcow2', args: ['--shrink', 'IMAGE', '32k'] },
  { fixture: 'snap.qcow2', args: ['--shrink', 'IMAGE', '32k'] },
  { fixture: 'overlay.qcow2', args: ['--shrink', 'IMAGE', '96k'] },
  { fixture: 'plain.raw', args: ['-f', 'raw', 'IMAGE', '+1'] },
  { fixture: 'plain.raw', args: ['-f', 'raw', 'IMAGE', '1M'] },
  { fixture: 'plain.raw', args: ['-f', 'raw', '--preallocation=falloc', 'IMAGE', '1M'] },
  { fixture: 'plain.raw', args: ['-f', 'raw', '--preallocation=full', 'IMAGE', '1M'] },
  { fixture: 'sparse.raw', args: ['-f', 'raw', '--shrink', 'IMAGE', '1100k'] },
  { fixture: 'sparse.raw', args: ['-f', 'raw', '--shrink', 'IMAGE', '-3M'] },
  { fixture: 'sparse.raw', args: ['-f', 'raw', '--preallocation=full', 'IMAGE', '+1M'] },
  { fixture: 'plain.qcow2', args: ['-f', 'raw', 'IMAGE', '2M'] },
];

const REFUSED: Case[] = [
  { fixture: 'plain.qcow2', args: ['IMAGE', '512k'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '-64k'] },
  { fixture: 'plain.qcow2', args: ['--preallocation=metadata', 'IMAGE', '1M'] },
  { fixture: 'plain.qcow2', args: ['--preallocation=bogus', 'IMAGE', '2M'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '-1M'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '-2M'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '0'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '8E'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', 'abc'] },
  { fixture: 'plain.qcow2', args: ['IMAGE'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', 'IMAGE', '2M'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '+1'] },
  { fixture: 'plain.qcow2', args: ['IMAGE', '1E'] },
  { fixture: 'v2snap.qcow2', args: ['IMAGE', '2M'] },
  { fixture: 'plain.raw', args: ['-f', 'raw', 'IMAGE', '512'] },
  { fixture: 'plain.raw', args: ['-f', 'raw', '--preallocation=metadata', 'IMAGE', '1M'] },
];

/** Ours refuses (not implemented) what qemu-img does: the image is left as it was. */
const UNSUPPORTED: (Case & { message: RegExp })[] = [
  { fixture: 'overlay.qcow2', args: ['--preallocation=metadata', 'IMAGE', '2M'], message: /preallocation=metadata is implemented only/ },
  { fixture: 'extl2.qcow2', args: ['--preallocation=metadata', 'IMAGE', '3M'], message: /preallocation=metadata is implemented only/ },
  { fixture: 'plain.qcow2', args: ['--preallocation=falloc', 'IMAGE', '2M'], message: /preallocation=falloc is not supported/ },
  { fixture: 'plain.qcow2', args: ['--preallocation=full', 'IMAGE', '2M'], message: /preallocation=full is not supported/ },
  { fixture: 'datafileraw.qcow2', args: ['IMAGE', '2M'], message: /data_file_raw/ },
];

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  await requireTool('qemu-nbd');
  await requireTool('nbdinfo');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-resize-'));
  await buildFixtures();
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 resize does what qemu-img resize does', () => {
  for (const k of RESIZED) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const qr = await q(withImage(k.args, theirs));
      expect(qr.exitCode, qr.stderr).toBe(0);
      const rr = await r(withImage(k.args, ours));
      expect(rr.stderr).toBe(qr.stderr.split(theirs).join(ours));
      expect(rr.exitCode).toBe(0);
      expect(rr.stdout).toBe(qr.stdout);
      const format = k.args.includes('raw') || k.fixture.endsWith('.raw') ? 'raw' : 'qcow2';
      expect(await virtualSize(ours, format)).toBe(await virtualSize(theirs, format));
      if (format === 'qcow2') {
        const check = await execa('qemu-img', ['check', ours], { cwd: dir, reject: false });
        expect(check.exitCode, check.stdout).toBe(0);
      }
      const cmp = await execa('qemu-img', ['compare', ...(format === 'raw' ? ['-s'] : []), '-f', format, '-F', format, theirs, ours], { cwd: dir, reject: false });
      expect(cmp.exitCode, cmp.stdout).toBe(0);
      const [mt, mo] = await Promise.all([
        execa('qemu-img', ['map', '-f', format, '--output=json', theirs], { cwd: dir }),
        execa('qemu-img', ['map', '-f', format, '--output=json', ours], { cwd: dir }),
      ]);
      if (format === 'raw') expect(mo.stdout).toBe(mt.stdout);
      else expect(mapWithoutOffsets(mo.stdout)).toEqual(mapWithoutOffsets(mt.stdout));
      if (k.fixture === 'bitmaps.qcow2') {
        expect(await bitmapsOf(ours, dir)).toEqual(await bitmapsOf(theirs, dir));
        for (const name of ['b0', 'fine']) expect(await dirtyMap(ours, name, dir), name).toEqual(await dirtyMap(theirs, name, dir));
      }
      if (format === 'qcow2' && k.args.includes('--shrink')) {
        for (const image of [theirs, ours]) await img('resize', '-q', image, '+2M');
        const again = await execa('qemu-img', ['compare', theirs, ours], { cwd: dir, reject: false });
        expect(again.exitCode, again.stdout).toBe(0);
        const checkAgain = await execa('qemu-img', ['check', ours], { cwd: dir, reject: false });
        expect(checkAgain.exitCode, checkAgain.stdout).toBe(0);
        if (k.fixture === 'snap.qcow2') {
          // The snapshot still holds its 64 KiB, cut from the active disk only.
          await img('snapshot', '-a', 's1', ours);
          const read = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x19 0 64k', ours], { cwd: dir, reject: false });
          expect(read.stdout).not.toMatch(/Pattern verification failed/);
          expect(read.exitCode).toBe(0);
        }
      }
    });
  }
});

describe.concurrent('qcow2 resize refuses what qemu-img refuses', () => {
  for (const k of REFUSED) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const before = await readFile(join(dir, ours));
      const qr = await q(withImage(k.args, theirs));
      expect(qr.exitCode).toBe(1);
      const rr = await r(withImage(k.args, ours));
      expect(rr.exitCode).toBe(1);
      expect(rr.stdout).toBe(qr.stdout);
      expect(rr.stderr).toMatch(/^qcow2 resize: usage: [^\n]*$/);
      for (const line of qr.stderr.split('\n')) {
        if (line.startsWith('qemu-img: ')) expect(rr.stderr).toContain(line.slice('qemu-img: '.length).replace(/^warning: /, ''));
      }
      expect((await readFile(join(dir, ours))).equals(before)).toBe(true);
    });
  }
});

describe.concurrent('qcow2 resize beyond qemu-img', () => {
  for (const k of UNSUPPORTED) {
    it(`refuses ${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const before = await readFile(join(dir, ours));
      expect((await q(withImage(k.args, theirs))).exitCode).toBe(0);
      const rr = await r(withImage(k.args, ours));
      expect(rr.exitCode).toBe(1);
      expect(rr.stdout).toBe('');
      expect(rr.stderr).toMatch(/^qcow2 resize: unsupported: /);
      expect(rr.stderr).toMatch(k.message);
      expect((await readFile(join(dir, ours))).equals(before)).toBe(true);
    });
  }
  it('refuses, as qemu-img does, an image with an inconsistent (in_use) bitmap; the size stays', async () => {
    const { theirs, ours } = await copies('inuse.qcow2');
    const qr = await q([theirs, '2M']);
    expect(qr.exitCode).toBe(1);
    expect(qr.stderr).toContain("Bitmap 'b0' is inconsistent and cannot be used");
    const rr = await r([ours, '2M']);
    expect(rr.exitCode).toBe(1);
    expect(rr.stdout).toBe('');
    expect(rr.stderr).toMatch(/^qcow2 resize: usage: Bitmap 'b0' is inconsistent and cannot be used/);
    expect(await virtualSize(ours, 'qcow2')).toBe(1 << 20);
    expect(await bitmapsOf(ours, dir)).toEqual(await bitmapsOf(theirs, dir));
  });
  it('warns as qemu-img does when a raw format is probed', async () => {
    const { theirs, ours } = await copies('plain.raw');
    const qr = await q([theirs, '+1M']);
    const rr = await r([ours, '+1M']);
    expect(rr.exitCode).toBe(qr.exitCode);
    expect(rr.stdout).toBe(qr.stdout);
    expect(rr.stderr).toBe(qr.stderr.split(theirs).join(ours));
  });
});
