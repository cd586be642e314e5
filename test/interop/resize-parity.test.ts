/**
 * `qcow2 resize` against `qemu-img resize` (QEMU 7.2): the same image is copied twice, qemu-img
 * resizes one copy and we resize the other, with the same arguments. Then:
 *  - same stdout ("Image resized.", nothing with -q) and exit status;
 *  - `qemu-img info` gives the same virtual size; `qemu-img check` finds ours clean (qcow2);
 *  - `qemu-img compare` finds the two identical (strictly: -s, same allocation too, for raw);
 *  - `qemu-img map --output=json` is the same for both (raw images, every preallocation mode, and
 *    qcow2 images with an external data file, where host offsets are guest offsets: exactly; other
 *    qcow2 images: with host offsets left out and entries merged, as clusters may be placed
 *    elsewhere, and for data extents without the `zero` flag, which QEMU takes from the image
 *    file's holes only when its qcow2_detect_metadata_preallocation, comparing the file's
 *    allocated blocks with its referenced clusters, says so: the host file system's decision);
 *  - with a data file, the data files have the same length and the same allocated blocks.
 * Every preallocation mode is covered over plain images, extended L2, v2, snapshots, compressed
 * clusters, backing files shorter and longer than the image, partial last clusters, external data
 * files (plain and data_file_raw, which QEMU grows with metadata preallocation even when asked
 * for none); with falloc or full and no data file the image files are byte-identical (encrypted
 * images: luks-commands.test.ts). Command lines
 * qemu-img refuses are refused alike: same exit status, no stdout, and each of qemu-img's
 * messages inside ours. Persistent bitmaps come out as QEMU's (`qemu-img info`).
 * Each copy lives in a folder of its own with the files its image names (QEMU 7.2 resolves a data
 * file's name against the working directory, so commands run there); in memory where the machine
 * has it, as qemu-img's preallocation syncs.
 * Shrunk qcow2 images are also grown back by qemu-img and compared again (nothing of the cut area
 * comes back), and their snapshots still read as before.
 */
import { execa } from 'execa';
import { copyFile, mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImgCalibrating } from '../support/luks-image.js';
import { qcow2 } from '../support/cli.js';
import { bitmapsOf, dirtyMap, mapWithoutOffsets } from '../support/qemu-views.js';
import { requireTool } from '../support/tools.js';
import { scratchDir } from '../../src/verification/crash/workload.js';

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
  await io('qcow2', 'datafileraw.qcow2', 'write -P 0x25 0 64k', 'write -P 0x26 1000k 1k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=ext-data.raw', 'datafile.qcow2', '1M');
  await io('qcow2', 'datafile.qcow2', 'write -P 0x27 0 64k', 'write -P 0x28 1000k 1k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', '-b', 'base.qcow2', '-F', 'qcow2', 'overlayx.qcow2', '1M');
  await io('qcow2', 'overlayx.qcow2', 'write -P 0x29 66k 6k');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'overlayodd.qcow2', '1000k');
  await io('qcow2', 'overlayodd.qcow2', 'write -P 0x2a 960k 8k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', '-b', 'base.qcow2', '-F', 'qcow2', 'overlayxodd.qcow2', '1001k');
  await io('qcow2', 'overlayxodd.qcow2', 'write -P 0x2c 960k 8k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', 'extl2odd.qcow2', '1000k');
  await io('qcow2', 'extl2odd.qcow2', 'write -P 0x2b 962k 3k');
  await writeFile(join(dir, 'plain.raw'), Buffer.alloc(1001, 0x31));
  await writeFile(join(dir, 'sparse.raw'), '');
  await truncate(join(dir, 'sparse.raw'), 4 << 20);
  await io('raw', 'sparse.raw', 'write -P 0x32 1M 64k');
}

/** The files an image names (its data file, its backing file), copied along with it. */
const SIDE_FILES: Record<string, string[]> = {
  'datafileraw.qcow2': ['plain-data.raw'],
  'datafile.qcow2': ['ext-data.raw'],
  'overlay.qcow2': ['base.qcow2'],
  'overlayx.qcow2': ['base.qcow2'],
  'overlayodd.qcow2': ['base.qcow2'],
  'overlayxodd.qcow2': ['base.qcow2'],
};

/**
 * Two fresh copies of `fixture` (qemu-img's, ours), each in a folder of its own with the files it
 * names, under the image's own name: `t3/plain.qcow2`, `o3/plain.qcow2`.
 */
async function copies(fixture: string): Promise<{ theirs: string; ours: string }> {
  const k = n++;
  const out: string[] = [];
  for (const who of ['t', 'o']) {
    const sub = `${who}${k}`;
    await mkdir(join(dir, sub));
    for (const file of [fixture, ...(SIDE_FILES[fixture] ?? [])]) await copyFile(join(dir, file), join(dir, sub, file));
    out.push(`${sub}/${fixture}`);
  }
  return { theirs: out[0] ?? '', ours: out[1] ?? '' };
}

const folderOf = (image: string) => join(dir, image.slice(0, image.indexOf('/')));
const nameIn = (image: string) => image.slice(image.indexOf('/') + 1);
/** `qemu-img ARGS IMAGE` (IMAGE in ARGS, or last) in the copy's folder. */
const imgAt = (image: string, args: string[]) =>
  execa('qemu-img', args.includes('IMAGE') ? withImage(args, nameIn(image)) : [...args, nameIn(image)], { cwd: folderOf(image), reject: false });

const q = (args: string[], image: string) => imgAt(image, ['resize', ...args]);
const r = (args: string[], image: string) => qcow2(['resize', ...withImage(args, nameIn(image))], { cwd: folderOf(image) });

/** `args` with IMAGE standing for the image. */
const withImage = (args: string[], image: string) => args.map((a) => (a === 'IMAGE' ? image : a));

async function virtualSize(image: string, format: string): Promise<number> {
  const out = await imgAt(image, ['info', '-f', format, '--output=json']);
  return (JSON.parse(out.stdout) as { 'virtual-size': number })['virtual-size'];
}

/** The external data file an image names, if any. */
const dataFileOf = (fixture: string) => SIDE_FILES[fixture]?.find((f) => f.endsWith('.raw'));

/**
 * `qemu-img compare` of the two copies (strictly, -s, for raw). An image with a data file is named
 * with its data file (--image-opts): QEMU 7.2 finds a data file from the working directory.
 */
function compare(theirs: string, ours: string, format: string) {
  const dataFile = dataFileOf(nameIn(theirs));
  if (dataFile === undefined) return execa('qemu-img', ['compare', ...(format === 'raw' ? ['-s'] : []), '-f', format, '-F', format, theirs, ours], { cwd: dir, reject: false });
  const opts = (image: string) => `driver=qcow2,file.filename=${image},data-file.driver=file,data-file.filename=${join(image.slice(0, image.indexOf('/')), dataFile)}`;
  return execa('qemu-img', ['compare', '--image-opts', opts(theirs), opts(ours)], { cwd: dir, reject: false });
}

/**
 * A map (mapWithoutOffsets) without the `zero` flag of data extents: QEMU sets it from holes in the
 * image file only when qcow2_detect_metadata_preallocation finds the file's allocated blocks few
 * against its referenced clusters, which the host file system decides (tmpfs allocates pages).
 */
function withoutDataZeroFlag(map: unknown): unknown {
  const merged: Record<string, unknown>[] = [];
  for (const e of map as Record<string, unknown>[]) {
    const entry: Record<string, unknown> = e['data'] === true ? { ...e, zero: 'either' } : { ...e };
    const last = merged[merged.length - 1];
    const same = last && ['depth', 'present', 'zero', 'data'].every((k) => last[k] === entry[k]);
    if (last && same && (last['start'] as number) + (last['length'] as number) === entry['start']) last['length'] = (last['length'] as number) + (entry['length'] as number);
    else merged.push(entry);
  }
  return merged;
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
  ...(['metadata', 'falloc', 'full'] as const).flatMap((mode): Case[] =>
    [
      ['plain.qcow2', '3M'],
      ['plain.qcow2', '3333k'],
      ['odd.qcow2', '+1M'],
      ['small.qcow2', '9M'],
      ['extl2.qcow2', '3M'],
      ['extl2.qcow2', '3333k'],
      ['extl2odd.qcow2', '3333k'],
      ['v2.qcow2', '+3M'],
      ['snap.qcow2', '2M'],
      ['compressed.qcow2', '1536k'],
      ['overlay.qcow2', '3M'],
      ['overlay.qcow2', '3333k'],
      ['overlay.qcow2', '6M'],
      ['overlayx.qcow2', '3M'],
      ['overlayx.qcow2', '3333k'],
      ['overlayodd.qcow2', '3M'],
      ['overlayxodd.qcow2', '3333k'],
      ['datafile.qcow2', '3M'],
      ['datafile.qcow2', '3333k'],
      ['datafileraw.qcow2', '3M'],
      ['datafileraw.qcow2', '3333k'],
    ].map(([fixture, size]) => ({ fixture: fixture ?? '', args: [`--preallocation=${mode}`, 'IMAGE', size ?? ''] })),
  ),
  { fixture: 'datafileraw.qcow2', args: ['IMAGE', '2M'] },
  { fixture: 'datafileraw.qcow2', args: ['IMAGE', '+333k'] },
  { fixture: 'datafile.qcow2', args: ['IMAGE', '3333k'] },
  { fixture: 'datafile.qcow2', args: ['--shrink', 'IMAGE', '512k'] },
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

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  await requireTool('qemu-nbd');
  await requireTool('nbdinfo');
  // In memory where the machine has it: qemu-img's preallocation syncs.
  dir = await scratchDir('qcow2-resize-');
  await buildFixtures();
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 resize does what qemu-img resize does', () => {
  for (const k of RESIZED) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const qr = await q(k.args, theirs);
      expect(qr.exitCode, qr.stderr).toBe(0);
      const rr = await r(k.args, ours);
      expect(rr.stderr).toBe(qr.stderr);
      expect(rr.exitCode).toBe(0);
      expect(rr.stdout).toBe(qr.stdout);
      const format = k.args.includes('raw') || k.fixture.endsWith('.raw') ? 'raw' : 'qcow2';
      expect(await virtualSize(ours, format)).toBe(await virtualSize(theirs, format));
      if (format === 'qcow2') {
        const check = await imgAt(ours, ['check']);
        expect(check.exitCode, check.stdout).toBe(0);
      }
      const cmp = await compare(theirs, ours, format);
      expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
      const [mt, mo] = await Promise.all([imgAt(theirs, ['map', '-f', format, '--output=json']), imgAt(ours, ['map', '-f', format, '--output=json'])]);
      const dataFile = dataFileOf(k.fixture);
      if (format === 'raw' || dataFile !== undefined) expect(mo.stdout).toBe(mt.stdout);
      else expect(withoutDataZeroFlag(mapWithoutOffsets(mo.stdout))).toEqual(withoutDataZeroFlag(mapWithoutOffsets(mt.stdout)));
      if (format === 'qcow2' && dataFile === undefined && k.args.some((a) => /^--preallocation=(falloc|full)$/.test(a))) {
        // qcow2_co_truncate's refcount area and data run, laid out as QEMU lays them out.
        expect((await readFile(join(dir, ours))).equals(await readFile(join(dir, theirs))), 'image files byte for byte').toBe(true);
      }
      if (dataFile !== undefined) {
        const [st, so] = await Promise.all([stat(join(folderOf(theirs), dataFile)), stat(join(folderOf(ours), dataFile))]);
        expect({ size: so.size, blocks: so.blocks }).toEqual({ size: st.size, blocks: st.blocks });
      }
      if (k.fixture === 'bitmaps.qcow2') {
        expect(await bitmapsOf(ours, dir)).toEqual(await bitmapsOf(theirs, dir));
        for (const name of ['b0', 'fine']) expect(await dirtyMap(ours, name, dir), name).toEqual(await dirtyMap(theirs, name, dir));
      }
      if (format === 'qcow2' && k.args.includes('--shrink')) {
        for (const image of [theirs, ours]) await imgAt(image, ['resize', '-q', 'IMAGE', '+2M']);
        const again = await compare(theirs, ours, format);
        expect(again.exitCode, again.stdout).toBe(0);
        const checkAgain = await imgAt(ours, ['check']);
        expect(checkAgain.exitCode, checkAgain.stdout).toBe(0);
        if (k.fixture === 'snap.qcow2') {
          // The snapshot still holds its 64 KiB, cut from the active disk only.
          await imgAt(ours, ['snapshot', '-a', 's1']);
          const read = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x19 0 64k', nameIn(ours)], { cwd: folderOf(ours), reject: false });
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
      const qr = await q(k.args, theirs);
      expect(qr.exitCode).toBe(1);
      const rr = await r(k.args, ours);
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
  it('refuses, as qemu-img does, an image with an inconsistent (in_use) bitmap; the size stays', async () => {
    const { theirs, ours } = await copies('inuse.qcow2');
    const qr = await q(['IMAGE', '2M'], theirs);
    expect(qr.exitCode).toBe(1);
    expect(qr.stderr).toContain("Bitmap 'b0' is inconsistent and cannot be used");
    const rr = await r(['IMAGE', '2M'], ours);
    expect(rr.exitCode).toBe(1);
    expect(rr.stdout).toBe('');
    expect(rr.stderr).toMatch(/^qcow2 resize: usage: Bitmap 'b0' is inconsistent and cannot be used/);
    expect(await virtualSize(ours, 'qcow2')).toBe(1 << 20);
    expect(await bitmapsOf(ours, dir)).toEqual(await bitmapsOf(theirs, dir));
  });
  it('warns as qemu-img does when a raw format is probed', async () => {
    const { theirs, ours } = await copies('plain.raw');
    const qr = await q(['IMAGE', '+1M'], theirs);
    const rr = await r(['IMAGE', '+1M'], ours);
    expect(rr.exitCode).toBe(qr.exitCode);
    expect(rr.stdout).toBe(qr.stdout);
    expect(rr.stderr).toBe(qr.stderr);
  });
});
