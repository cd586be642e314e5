/**
 * `qcow2 amend` against `qemu-img amend` (QEMU 7.2): each fixture is copied twice, qemu-img amends
 * one copy and we amend the other, with the same arguments. Then:
 *  - same exit status, same stdout (nothing, or the `-o help` list), same stderr: qemu-img's error
 *    line (after `qemu-img: `) is ours after `qcow2 amend: CODE: `, its other lines (hints) as they
 *    are, its pointer to --help not repeated;
 *  - after a success: `qemu-img check` finds ours clean; `qemu-img info --output=json` is the same
 *    for both (but for the file's name and its allocated size: where new refcount blocks, tables
 *    and expanded zero clusters go is ours to choose); `qemu-img compare` finds the guest contents
 *    identical; `qemu-img map --output=json` is the same without host offsets (the same reason);
 *    internal snapshots still read as they did;
 *  - after a refusal made before any change: our image file is byte for byte as it was.
 * The fixtures: v2 and v3 images, clusters of 512 bytes, 64 KiB and 2 MiB, extended L2, an external
 * data file (raw and not), a backing file, compressed clusters (zlib and zstd), zero clusters
 * (plain and preallocated), internal snapshots, persistent bitmaps, lazy refcounts, an image left
 * dirty by a killed writer, refcount widths other than 16.
 */
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { mapWithoutOffsets } from '../support/qemu-views.js';
import { expectSameMessage } from '../support/qemu-messages.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (file: string, ...cmds: string[]) => execa('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

/** Data, a zero write over data (preallocated zero cluster), a plain zero cluster, compressed data. */
async function fill(file: string, k: number): Promise<void> {
  const C = k;
  await io(file, `write -P 0x11 0 ${2 * C}`, `write -P 0x12 ${4 * C} ${C}`, `write -z ${4 * C} ${C}`, `write -z ${6 * C} ${C}`, `write -P 0x13 ${8 * C} ${C / 2}`);
}

async function buildFixtures(): Promise<void> {
  await img('create', '-q', '-f', 'qcow2', 'plain.qcow2', '4M');
  await fill('plain.qcow2', 65536);
  await io('plain.qcow2', 'write -c -P 0x14 1M 64k');
  await img('create', '-q', '-f', 'qcow2', 'snap.qcow2', '4M');
  await fill('snap.qcow2', 65536);
  await img('snapshot', '-c', 's1', 'snap.qcow2');
  await io('snap.qcow2', 'write -z 0 64k', 'write -P 0x15 2M 64k', 'write -z 3M 64k');
  await img('snapshot', '-c', 's2', 'snap.qcow2');
  await io('snap.qcow2', 'write -P 0x16 64k 4k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', 'c512.qcow2', '1M');
  await fill('c512.qcow2', 512);
  await io('c512.qcow2', 'write -P 0x17 600k 100k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=2M', 'c2m.qcow2', '32M');
  await fill('c2m.qcow2', 2 << 20);
  await img('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', 'extl2.qcow2', '4M');
  await io('extl2.qcow2', 'write -P 0x18 2k 6k', 'write -z 1M 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=datafile.raw', 'datafile.qcow2', '1M');
  await io('datafile.qcow2', 'write -P 0x19 0 64k');
  // The same data under another name, for data_file=renamed.raw.
  await copyFile(join(dir, 'datafile.raw'), join(dir, 'renamed.raw'));
  await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=dataraw.raw,data_file_raw=on', 'dataraw.qcow2', '1M');
  await io('dataraw.qcow2', 'write -P 0x1a 0 64k');
  await img('create', '-q', '-f', 'qcow2', 'base.qcow2', '4M');
  await io('base.qcow2', 'write -P 0x21 0 4M');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'overlay.qcow2', '4M');
  await fill('overlay.qcow2', 65536);
  await img('snapshot', '-c', 's1', 'overlay.qcow2');
  await io('overlay.qcow2', 'write -z 2M 128k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '4M');
  await io('v2.qcow2', 'write -P 0x22 0 128k', 'write -c -P 0x23 1M 64k');
  await img('snapshot', '-c', 's1', 'v2.qcow2');
  await io('v2.qcow2', 'write -P 0x24 64k 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', 'lazy.qcow2', '4M');
  await fill('lazy.qcow2', 65536);
  // A writer killed with lazy refcounts in force leaves the image dirty.
  await img('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', 'dirty.qcow2', '4M');
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x25 0 256k', '-c', 'write -z 1M 64k', '-c', 'sigraise 9', 'dirty.qcow2'], { cwd: dir, reject: false });
  await img('create', '-q', '-f', 'qcow2', 'bitmaps.qcow2', '4M');
  await img('bitmap', '--add', 'bitmaps.qcow2', 'b0');
  await io('bitmaps.qcow2', 'write -P 0x26 0 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', 'zstd.qcow2', '4M');
  await io('zstd.qcow2', 'write -P 0x27 0 64k', 'write -z 1M 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', 'zstdc.qcow2', '4M');
  await io('zstdc.qcow2', 'write -c -P 0x28 0 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=8', 'r8.qcow2', '4M');
  await fill('r8.qcow2', 65536);
  await img('snapshot', '-c', 's1', 'r8.qcow2');
  await img('create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=1', 'r1.qcow2', '4M');
  await fill('r1.qcow2', 65536);
  // A snapshot of another disk size: QEMU refuses to downgrade.
  await img('create', '-q', '-f', 'qcow2', 'snapsize.qcow2', '1M');
  await img('snapshot', '-c', 's1', 'snapsize.qcow2');
  await img('resize', '-q', 'snapsize.qcow2', '2M');
  await execa('sh', ['-c', 'printf x > notqcow.raw'], { cwd: dir });
}

/** The files an image names (its data file, its backing file), copied along with it. */
const SIDE_FILES: Record<string, string[]> = {
  'datafile.qcow2': ['datafile.raw', 'renamed.raw'],
  'dataraw.qcow2': ['dataraw.raw'],
  'overlay.qcow2': ['base.qcow2'],
};

/**
 * Two fresh copies of `fixture` (qemu-img's, ours), each in a folder of its own with the files it
 * names: no two processes ever open the same data file or backing file for writing.
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

const withImage = (args: string[], image: string) => args.map((a) => (a === 'IMAGE' ? image : a));
/**
 * Each copy's commands run in its own folder: QEMU 7.2 resolves a data file's name against the
 * working directory, so only there does each copy reach its own data file.
 */
const folderOf = (image: string) => join(dir, image.slice(0, image.indexOf('/')));
const nameIn = (image: string) => image.slice(image.indexOf('/') + 1);
const q = (args: string[], image: string) => execa('qemu-img', ['amend', ...withImage(args, nameIn(image))], { cwd: folderOf(image), reject: false });
const r = (args: string[], image: string) => qcow2(['amend', ...withImage(args, nameIn(image))], { cwd: folderOf(image) });
/** qemu-img on one copy, in its folder. */
const imgAt = (image: string, ...args: string[]) => execa('qemu-img', [...args, nameIn(image)], { cwd: folderOf(image), reject: false });



/**
 * `qemu-img info --output=json` without what legitimately differs: the file's name, its allocated
 * size.
 */
async function info(image: string): Promise<unknown> {
  const out = JSON.parse((await imgAt(image, 'info', '--output=json')).stdout) as Record<string, unknown>;
  delete out['filename'];
  delete out['actual-size'];
  return out;
}

interface Case {
  fixture: string;
  args: string[];
  /**
   * QEMU 7.2 repairs the refcounts of an image left dirty when it opens it, and prints what it
   * repaired on stderr; ours repairs it silently: stderr is not compared.
   */
  repairedOnOpen?: boolean;
  /**
   * QEMU 7.2's downgrade fills a zero cluster's host cluster with zeros in place even when a
   * snapshot shares it (the snapshot then reads zeros there, and `qemu-img check` finds COPIED set
   * on a cluster with refcount 3); ours gives the active layer a cluster of its own (or none). The
   * map of the active layer then differs where that happened: it is not compared. Every snapshot
   * of ours is still compared with the fixture's.
   */
  qemuOverwritesShared?: boolean;
  /**
   * Nothing is allocated (only the header, or entries in place, change): ours is byte for byte
   * qemu-img's image file.
   */
  sameBytes?: boolean;
}

const same = (k: Case): Case => ({ ...k, sameBytes: true });

const o = (fixture: string, options: string, ...more: string[]): Case => ({ fixture, args: [...more, '-o', options, 'IMAGE'] });

const AMENDED: Case[] = [
  ...['1', '2', '4', '8', '32', '64'].map((bits) => o('plain.qcow2', `refcount_bits=${bits}`)),
  ...['2', '4', '8', '32', '64'].map((bits) => o('snap.qcow2', `refcount_bits=${bits}`)),
  o('r8.qcow2', 'refcount_bits=16'),
  o('r8.qcow2', 'refcount_bits=64'),
  { ...o('r8.qcow2', 'refcount_bits=16,compat=0.10'), qemuOverwritesShared: true },
  o('r1.qcow2', 'refcount_bits=16'),
  o('r1.qcow2', 'refcount_bits=2'),
  o('c512.qcow2', 'refcount_bits=1'),
  o('c512.qcow2', 'refcount_bits=64'),
  same(o('c512.qcow2', 'compat=0.10')),
  o('c2m.qcow2', 'lazy_refcounts=on'),
  same(o('c2m.qcow2', 'compat=0.10')),
  o('extl2.qcow2', 'refcount_bits=8'),
  same(o('extl2.qcow2', 'lazy_refcounts=on')),
  same(o('plain.qcow2', 'compat=0.10')),
  o('plain.qcow2', 'compat=v2', '-q'),
  same(o('plain.qcow2', 'compat=1.1')),
  same(o('plain.qcow2', 'lazy_refcounts=on')),
  same(o('plain.qcow2', 'lazy_refcounts=off')),
  same(o('plain.qcow2', 'data_file_raw=off')),
  o('plain.qcow2', 'size=0'),
  same(o('plain.qcow2', 'size=8M')),
  o('plain.qcow2', 'size=512k'),
  o('snap.qcow2', 'size=6M'),
  o('plain.qcow2', 'size=6M,lazy_refcounts=on,refcount_bits=8'),
  o('plain.qcow2', 'refcount_bits=0x20', '-t', 'writethrough'),
  same(o('plain.qcow2', 'refcount_bits=16', '--force')),
  { ...o('snap.qcow2', 'compat=0.10'), qemuOverwritesShared: true },
  { ...o('snap.qcow2', 'compat=0.10', '-t', 'unsafe'), qemuOverwritesShared: true },
  o('overlay.qcow2', 'compat=0.10'),
  same(o('overlay.qcow2', 'backing_file=base.qcow2,backing_fmt=qcow2')),
  o('overlay.qcow2', 'refcount_bits=32'),
  same(o('v2.qcow2', 'compat=1.1')),
  same(o('v2.qcow2', 'compat=v3,lazy_refcounts=on')),
  o('v2.qcow2', 'compat=1.1,refcount_bits=8'),
  o('v2.qcow2', 'lazy_refcounts=off'),
  o('v2.qcow2', 'compat=0.10'),
  same(o('lazy.qcow2', 'lazy_refcounts=off')),
  same(o('lazy.qcow2', 'compat=0.10')),
  o('lazy.qcow2', 'refcount_bits=4'),
  { ...o('dirty.qcow2', 'lazy_refcounts=off'), repairedOnOpen: true },
  { ...o('dirty.qcow2', 'compat=0.10'), repairedOnOpen: true },
  { ...o('dirty.qcow2', 'refcount_bits=2'), repairedOnOpen: true },
  same(o('datafile.qcow2', 'data_file=datafile.raw')),
  same(o('datafile.qcow2', 'data_file=renamed.raw')),
  same(o('datafile.qcow2', 'data_file=renamed.raw,data_file_raw=off,lazy_refcounts=on')),
  same(o('datafile.qcow2', 'data_file_raw=off')),
  o('datafile.qcow2', 'refcount_bits=8'),
  o('dataraw.qcow2', 'data_file_raw=on'),
  same(o('dataraw.qcow2', 'data_file_raw=off')),
  // Grown with the new area mapped 1:1 in the data file (metadata preallocation), as QEMU does.
  o('dataraw.qcow2', 'size=2M'),
  o('dataraw.qcow2', 'size=3333k'),
  o('bitmaps.qcow2', 'refcount_bits=8'),
  o('bitmaps.qcow2', 'lazy_refcounts=on'),
  o('zstd.qcow2', 'compat=0.10'),
  o('zstdc.qcow2', 'refcount_bits=1'),
  o('plain.qcow2', 'help'),
  o('plain.qcow2', '?'),
];

/**
 * qemu-img 7.2 takes minutes to change the refcount width of an image with 2 MiB clusters (each
 * refcount block then holds millions of entries): ours alone, judged by qemu-img check, qemu-img
 * info and qemu-img compare with the fixture.
 */
const WITHOUT_ORACLE: { fixture: string; bits: number }[] = [
  { fixture: 'c2m.qcow2', bits: 1 },
  { fixture: 'c2m.qcow2', bits: 4 },
  { fixture: 'c2m.qcow2', bits: 64 },
];

/** Refused by both, before anything is written. */
const REFUSED: Case[] = [
  o('plain.qcow2', 'cluster_size=4k'),
  o('plain.qcow2', 'extended_l2=on'),
  o('plain.qcow2', 'preallocation=metadata'),
  o('plain.qcow2', 'encrypt.format=luks'),
  o('plain.qcow2', 'encrypt.state=active'),
  o('plain.qcow2', 'compression_type=zstd'),
  o('plain.qcow2', 'foo=bar'),
  o('plain.qcow2', 'compat=0.11'),
  o('plain.qcow2', 'compat=1.1,,', '-f', 'qcow2'),
  o('plain.qcow2', 'compat'),
  o('plain.qcow2', 'refcount_bits=3'),
  o('plain.qcow2', 'refcount_bits=0'),
  o('plain.qcow2', 'refcount_bits=128'),
  o('plain.qcow2', 'refcount_bits=abc'),
  o('plain.qcow2', 'lazy_refcounts=maybe'),
  o('plain.qcow2', 'size=abc'),
  o('plain.qcow2', 'size=1000'),
  o('plain.qcow2', 'size=8E'),
  o('plain.qcow2', 'size=100P'),
  o('v2.qcow2', 'size=8M'),
  o('plain.qcow2', 'data_file=x.raw'),
  o('plain.qcow2', 'data_file_raw=on'),
  o('plain.qcow2', 'compat=0.10,refcount_bits=8'),
  o('plain.qcow2', 'compat=0.10,lazy_refcounts=on'),
  o('plain.qcow2', 'backing_file=base.qcow2'),
  o('overlay.qcow2', 'backing_file=base.qcow2'),
  o('overlay.qcow2', 'backing_fmt=raw'),
  o('plain.qcow2', 'refcount_bits=1', '-t', 'bogus'),
  o('snap.qcow2', 'refcount_bits=1'),
  o('r8.qcow2', 'compat=0.10'),
  o('extl2.qcow2', 'compat=0.10'),
  o('datafile.qcow2', 'compat=0.10'),
  o('snapsize.qcow2', 'compat=0.10'),
  o('zstdc.qcow2', 'compat=0.10'),
  o('v2.qcow2', 'refcount_bits=8'),
  o('v2.qcow2', 'lazy_refcounts=on'),
  { fixture: 'plain.qcow2', args: ['IMAGE'] },
  { fixture: 'plain.qcow2', args: ['-o', '', 'IMAGE'] },
  { fixture: 'plain.qcow2', args: ['-o', 'compat=1.1', 'IMAGE', 'IMAGE'] },
  { fixture: 'plain.qcow2', args: ['-o', 'compat=1.1', 'missing.qcow2'] },
  { fixture: 'plain.qcow2', args: ['-o', 'compat=1.1', '-f', 'raw', 'IMAGE'] },
  { fixture: 'notqcow.raw', args: ['-o', 'compat=1.1', 'IMAGE'] },
  { fixture: 'notqcow.raw', args: ['-o', 'help', 'IMAGE'] },
  { fixture: 'notqcow.raw', args: ['-o', 'compat=1.1', '-f', 'qcow2', 'IMAGE'] },
];

/**
 * Refused by both after earlier steps changed the image (QEMU's steps run in order, each one done
 * before the next is checked): the same message, and the same image after it.
 */
const FAILED_HALF_WAY: Case[] = [
  o('v2.qcow2', 'compat=1.1,backing_file=other.qcow2'),
  o('plain.qcow2', 'refcount_bits=8,backing_fmt=raw'),
  o('snap.qcow2', 'refcount_bits=4,size=1000'),
  o('v2.qcow2', 'compat=1.1,refcount_bits=1'),
];

/** qemu-img amends these; we refuse (not implemented), leaving the image as it was. */
const UNSUPPORTED: (Case & { message: RegExp })[] = [
  { ...o('bitmaps.qcow2', 'compat=0.10'), message: /persistent bitmaps/ },
  { ...o('datafile.qcow2', 'data_file='), message: /data_file=''/ },
  { ...o('plain.qcow2', 'compat=1.1', '-t', 'none'), message: /O_DIRECT/ },
];

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-amend-'));
  await buildFixtures();
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 amend does what qemu-img amend does', { timeout: 180_000 }, () => {
  for (const k of AMENDED) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const qr = await q(k.args, theirs);
      expect(qr.exitCode, qr.stderr).toBe(0);
      const rr = await r(k.args, ours);
      if (!k.repairedOnOpen) expect(rr.stderr).toBe(qr.stderr);
      expect(rr.exitCode, rr.stderr).toBe(0);
      expect(rr.stdout).toBe(qr.stdout);
      const check = await imgAt(ours, 'check');
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      if (k.sameBytes) expect((await readFile(join(dir, ours))).equals(await readFile(join(dir, theirs))), 'same bytes as qemu-img').toBe(true);
      expect(await info(ours)).toEqual(await info(theirs));
      const cmp = await execa('qemu-img', ['compare', theirs, ours], { cwd: dir, reject: false });
      expect(cmp.exitCode, cmp.stdout).toBe(0);
      const [mt, mo] = await Promise.all([imgAt(theirs, 'map', '--output=json'), imgAt(ours, 'map', '--output=json')]);
      if (!k.qemuOverwritesShared) expect(mapWithoutOffsets(mo.stdout)).toEqual(mapWithoutOffsets(mt.stdout));
      const snapshots = (JSON.parse((await imgAt(ours, 'info', '--output=json')).stdout) as { snapshots?: { name: string }[] }).snapshots ?? [];
      for (const sn of snapshots) {
        // Each snapshot reads as it did in the fixture: amend changes no snapshot's content.
        const before = `${ours}.${sn.name}.fixture.raw`;
        const after = `${ours}.${sn.name}.raw`;
        await Promise.all([
          img('convert', '-l', `snapshot.name=${sn.name}`, '-O', 'raw', k.fixture, before),
          img('convert', '-l', `snapshot.name=${sn.name}`, '-O', 'raw', ours, after),
        ]);
        // (qemu-img convert -l writes the image's virtual size: a resize changes the length, past
        // the snapshot's own disk everything reads as zeros.)
        const [a, b] = [await readFile(join(dir, after)), await readFile(join(dir, before))];
        const common = Math.min(a.length, b.length);
        expect(a.subarray(0, common).equals(b.subarray(0, common)), sn.name).toBe(true);
        expect([...a.subarray(common), ...b.subarray(common)].every((x) => x === 0), sn.name).toBe(true);
      }
    });
  }
});

describe.concurrent('qcow2 amend where qemu-img amend takes too long', () => {
  for (const k of WITHOUT_ORACLE) {
    it(`${k.fixture}: -o refcount_bits=${k.bits}`, async ({ expect }) => {
      const { ours } = await copies(k.fixture);
      const rr = await r(['-o', `refcount_bits=${k.bits}`, 'IMAGE'], ours);
      expect(rr.exitCode, rr.stderr).toBe(0);
      expect(rr.stdout + rr.stderr).toBe('');
      const check = await imgAt(ours, 'check');
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      const after = JSON.parse((await imgAt(ours, 'info', '--output=json')).stdout) as { 'format-specific': { data: Record<string, unknown> } };
      expect(after['format-specific'].data['refcount-bits']).toBe(k.bits);
      const cmp = await execa('qemu-img', ['compare', k.fixture, ours], { cwd: dir, reject: false });
      expect(cmp.exitCode, cmp.stdout).toBe(0);
      const [mf, mo] = await Promise.all([img('map', '--output=json', k.fixture), imgAt(ours, 'map', '--output=json')]);
      expect(mapWithoutOffsets(mo.stdout)).toEqual(mapWithoutOffsets(mf.stdout));
    });
  }
});

describe.concurrent('qcow2 amend refuses what qemu-img amend refuses', () => {
  for (const k of REFUSED) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const before = await readFile(join(dir, ours));
      const qr = await q(k.args, theirs);
      expect(qr.exitCode).toBe(1);
      const rr = await r(k.args, ours);
      expect(rr.exitCode, rr.stderr).toBe(1);
      expect(rr.stdout).toBe(qr.stdout);
      expectSameMessage('amend', rr.stderr, qr.stderr, (s) => s);
      expect((await readFile(join(dir, ours))).equals(before)).toBe(true);
    });
  }
});

describe.concurrent('qcow2 amend fails half way where qemu-img amend does', () => {
  for (const k of FAILED_HALF_WAY) {
    it(`${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const qr = await q(k.args, theirs);
      expect(qr.exitCode).toBe(1);
      const rr = await r(k.args, ours);
      expect(rr.exitCode, rr.stderr).toBe(1);
      expect(rr.stdout).toBe(qr.stdout);
      expectSameMessage('amend', rr.stderr, qr.stderr, (s) => s);
      const check = await imgAt(ours, 'check');
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      expect(await info(ours)).toEqual(await info(theirs));
      const cmp = await execa('qemu-img', ['compare', theirs, ours], { cwd: dir, reject: false });
      expect(cmp.exitCode, cmp.stdout).toBe(0);
    });
  }
});

describe.concurrent('qcow2 amend beyond qemu-img', () => {
  for (const k of UNSUPPORTED) {
    it(`refuses ${k.fixture}: ${k.args.join(' ')}`, async ({ expect }) => {
      const { theirs, ours } = await copies(k.fixture);
      const before = await readFile(join(dir, ours));
      expect((await q(k.args, theirs)).exitCode).toBe(0);
      const rr = await r(k.args, ours);
      expect(rr.exitCode).toBe(1);
      expect(rr.stdout).toBe('');
      expect(rr.stderr).toMatch(/^qcow2 amend: unsupported: /);
      expect(rr.stderr).toMatch(k.message);
      expect((await readFile(join(dir, ours))).equals(before)).toBe(true);
    });
  }
});
