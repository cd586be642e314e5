/**
 * `qcow2 convert -B/-F, -n, -S, --target-is-zero, --bitmaps, --skip-broken-bitmaps` against
 * `qemu-img convert` (QEMU 7.2), with the same options on the same sources; for -n, into two
 * copies of the same existing target. Then:
 *  - same exit status, same stdout, and the same stderr line for line: qemu-img's error lines
 *    (`qemu-img: MSG`) are ours as `qcow2 convert: CODE: MSG` (its two-line size message on one
 *    line), its warnings (`qemu-img: warning: MSG`) ours as `qcow2 convert: warning: MSG`; an output
 *    is left behind only where qemu-img leaves one;
 *  - after success: `qemu-img check` finds ours clean; `qemu-img info --output=json` is the same
 *    (file name and size on disk aside); `qemu-img compare` finds the two outputs identical;
 *    `qemu-img map --output=json` is the same, host offsets included (qemu-img's layout: writes are
 *    issued in qemu-img's order), but for images of 4 KiB and 512-byte clusters, where the
 *    allocator places L2 tables and refcount blocks among the data clusters in its own order (the
 *    cases say `offsets: false`); data is never `zero` in the maps compared (qemu-img map says
 *    `zero` of a data cluster's host range that the file system reports as a hole at that moment);
 *  - with --bitmaps: the same bitmaps (name, flags, granularity) and the same dirty ranges.
 * The sources: qcow2 v3 and v2, clusters of 64 KiB, 4 KiB and 512 bytes, over a backing file with
 * data, compressed and zero clusters, explicit zero data and short runs of zeros between data (for
 * -S); a raw source; bitmaps enabled, disabled, of 512-byte granularity, and left in_use.
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConvertCase, outputInfo, outputMap, runBoth as runBothConvert, withoutHostZeroes } from '../support/convert-parity.js';
import { bitmapsOf, dirtyMap } from '../support/qemu-views.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (format: string, file: string, ...cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

interface Variant {
  name: string;
  options: string;
}

const VARIANTS: Variant[] = [
  { name: 'v3', options: 'compat=1.1' },
  { name: 'v2', options: 'compat=0.10' },
  { name: 'v3-4k', options: 'compat=1.1,cluster_size=4096' },
  { name: 'v2-512', options: 'compat=0.10,cluster_size=512' },
];

/** base <- top, a standalone image, and a target with data, in one variant: `${name}-base.qcow2`, ... */
async function buildVariant(v: Variant): Promise<void> {
  const f = (what: string) => `${v.name}-${what}.qcow2`;
  const create = (name: string, size: string, backing?: string) =>
    img('create', '-q', '-f', 'qcow2', '-o', v.options, ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), name, size);
  await create(f('base'), '4M');
  await io('qcow2', f('base'), 'write -P 0x11 0 1M', 'write -c -P 0x12 1M 128k', 'write -P 0x13 2M 64k', 'write -P 0x14 3584k 512');
  await create(f('top'), '4M', f('base'));
  await io(
    'qcow2',
    f('top'),
    'write -z 0 64k',
    'write -P 0x21 512k 64k',
    'write -P 0 1M 64k',
    'write -P 0x22 3M 4k',
    'write -c -P 0x23 2560k 64k',
    // Data with short runs of zeros between (1k, 3k, 8k, 40k): what -S decides on.
    'write -P 0x24 1536k 512',
    'write -P 0x25 1537k 1k',
    'write -P 0x26 1541k 1k',
    'write -P 0x27 1550k 2k',
    'write -P 0x28 1592k 512',
  );
  // Standalone, not a multiple of the cluster size.
  await create(f('solo'), '3000k');
  await io('qcow2', f('solo'), 'write -P 0x31 0 512', 'write -P 0x32 1k 512', 'write -P 0x33 5k 3k', 'write -P 0x34 64k 64k', 'write -z 128k 64k', 'write -P 0 256k 64k', 'write -c -P 0x35 512k 64k', 'write -P 0x36 2999k 1k');
  // Existing targets for -n: full of data with a zero cluster, of the same size and larger.
  await create(f('full'), '4M');
  await io('qcow2', f('full'), 'write -P 0x77 0 4M', 'write -z 1536k 64k');
  await create(f('bigger'), '6M');
  await io('qcow2', f('bigger'), 'write -P 0x78 0 2M', 'write -P 0x79 5M 64k');
  await create(f('small'), '1M');
}

async function buildFixtures(): Promise<void> {
  for (const v of VARIANTS) await buildVariant(v);
  await img('create', '-q', '-f', 'qcow2', 'other.qcow2', '4M');
  await io('qcow2', 'other.qcow2', 'write -P 0x11 0 2M', 'write -P 0x41 3M 64k');
  await img('create', '-q', '-f', 'qcow2', 'short.qcow2', '1M');
  await io('qcow2', 'short.qcow2', 'write -P 0x11 0 512k');
  await writeFile(join(dir, 'base.raw'), '');
  await truncate(join(dir, 'base.raw'), 4 << 20);
  await io('raw', 'base.raw', 'write -P 0x11 0 1M', 'write -P 0x51 3M 64k');
  // A raw source: data, holes, short runs of zeros.
  await writeFile(join(dir, 'src.raw'), '');
  await truncate(join(dir, 'src.raw'), 3 << 20);
  await io('raw', 'src.raw', 'write -P 0x61 0 4k', 'write -P 0x62 6k 2k', 'write -P 0x63 100k 60k', 'write -P 0x64 1M 512', 'write -P 0x65 1030k 1k', 'write -P 0 2M 64k');
  // Existing raw targets: same size, larger, smaller.
  for (const [name, size] of [['full.raw', 4 << 20], ['bigger.raw', 5 << 20], ['small.raw', 1 << 20]] as const) {
    await writeFile(join(dir, name), '');
    await truncate(join(dir, name), size);
    await io('raw', name, `write -P 0x7a 0 ${Math.min(size, 2 << 20)}`, ...(size > 4 << 20 ? ['write -P 0x7b 4M 1M'] : []));
  }
  // Bitmaps: enabled (written to while enabled), disabled, fine-grained; a v3 image over them.
  await img('create', '-q', '-f', 'qcow2', 'bm.qcow2', '4M');
  await img('bitmap', '--add', 'bm.qcow2', 'a');
  await img('bitmap', '--add', '-g', '128k', '--disable', 'bm.qcow2', 'dis');
  await io('qcow2', 'bm.qcow2', 'write -P 1 100k 8k', 'write -P 2 2M 4k');
  await img('bitmap', '--add', '-g', '512', 'bm.qcow2', 'fine');
  await io('qcow2', 'bm.qcow2', 'write -P 3 3M 1k', 'write -P 4 3333k 1k');
  await img('bitmap', '--merge', 'a', 'bm.qcow2', 'dis');
  await img('create', '-q', '-f', 'qcow2', 'inuse.qcow2', '4M');
  await img('bitmap', '--add', 'inuse.qcow2', 'b0');
  await img('bitmap', '--add', 'inuse.qcow2', 'b1');
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q 0 4k', '-c', 'sigraise 9', 'inuse.qcow2'], { cwd: dir, reject: false });
  await img('bitmap', '--add', 'inuse.qcow2', 'b2');
  await io('qcow2', 'inuse.qcow2', 'write -P 5 1M 64k');
  // A v3 target that has a bitmap of its own, and a v2 image with data (no bitmaps possible).
  await img('create', '-q', '-f', 'qcow2', 'hasbm.qcow2', '4M');
  await img('bitmap', '--add', 'hasbm.qcow2', 'own');
  await img('create', '-q', '-f', 'qcow2', 'hasdis.qcow2', '4M');
  await img('bitmap', '--add', 'hasdis.qcow2', 'dis');
  await img('create', '-q', '-f', 'qcow2', 'large.qcow2', '6M');
}

interface Case extends ConvertCase {
  /** Bitmaps whose dirty ranges are compared. */
  bitmaps?: string[];
  /**
   * Compare the maps without host offsets: in images of small clusters, where an L2 table or a
   * refcount block goes among the data clusters is the allocator's order, not convert's.
   */
  offsets?: false;
  /** Fails after the copy (exit 1 for both): the outputs are compared all the same. */
  fails?: boolean;
}

const QCOW2 = ['-O', 'qcow2'];

function variantCases(v: string): Case[] {
  const top = `${v}-top.qcow2`;
  const solo = `${v}-solo.qcow2`;
  const q = (args: string[], extra: Partial<Case> = {}): Case => ({ args: [...QCOW2, ...args], out: 'qcow2', ...extra });
  // Images of 4 KiB and 512-byte clusters: the allocator places their metadata among the data.
  const small = v === 'v3-4k' || v === 'v2-512' ? { offsets: false as const } : {};
  const r = (args: string[], extra: Partial<Case> = {}): Case => ({ args: ['-O', 'raw', ...args], out: 'raw', ...extra });
  return [
    // -B: the target names the backing file; only what the source's top layer holds is copied.
    q(['-B', `${v}-base.qcow2`, '-F', 'qcow2', top, 'OUT']),
    q(['-B', 'other.qcow2', '-F', 'qcow2', top, 'OUT']),
    q(['-B', 'short.qcow2', '-F', 'qcow2', top, 'OUT']),
    q(['-B', 'base.raw', '-F', 'raw', top, 'OUT']),
    q(['-B', 'other.qcow2', '-F', 'qcow2', solo, 'OUT']),
    q(['-c', '-B', `${v}-base.qcow2`, '-F', 'qcow2', top, 'OUT']),
    q(['-S', '0', '-B', `${v}-base.qcow2`, '-F', 'qcow2', top, 'OUT']),
    q(['-o', `${VARIANTS.find((x) => x.name === v)!.options},backing_file=${v}-base.qcow2,backing_fmt=qcow2`, top, 'OUT'], small),
    // -S: new qcow2 and raw outputs.
    ...['0', '512', '1k', '3k', '4k', '64k', '16M'].flatMap((s) => [q(['-S', s, top, 'OUT']), r(['-S', s, solo, 'OUT'])]),
    q(['-S', '0', '-c', solo, 'OUT']),
    q(['-S', '512', '-c', top, 'OUT']),
    q(['-S', '64k', '-o', 'cluster_size=4096', solo, 'OUT']),
    q(['-S', '1k', '-o', 'cluster_size=512', top, 'OUT'], { offsets: false }),
    // -n into existing images: same size, larger; qcow2 v3 and v2 and raw.
    q(['-n', top, 'OUT'], { target: `${v}-full.qcow2` }),
    q(['-n', top, 'OUT'], { target: `${v}-bigger.qcow2`, ...small }),
    q(['-n', '--target-is-zero', top, 'OUT'], { target: `${v}-full.qcow2` }),
    q(['-n', '--target-is-zero', solo, 'OUT'], { target: `${v}-bigger.qcow2` }),
    q(['-n', '-S', '0', solo, 'OUT'], { target: `${v}-bigger.qcow2`, ...small }),
    q(['-n', '-S', '64k', top, 'OUT'], { target: `${v}-full.qcow2` }),
    q(['-n', '-B', `${v}-base.qcow2`, top, 'OUT'], { target: `${v}-full.qcow2` }),
    q(['-n', '-B', 'other.qcow2', '-F', 'qcow2', top, 'OUT'], { target: `${v}-bigger.qcow2` }),
    r(['-n', top, 'OUT'], { target: 'full.raw' }),
    r(['-n', '-S', '1k', solo, 'OUT'], { target: 'bigger.raw' }),
  ];
}

const CASES: Case[] = [
  ...VARIANTS.flatMap((v) => variantCases(v.name)),
  { args: ['-n', 'v3-top.qcow2', 'OUT'], target: 'bigger.raw', out: 'raw' },
  { args: ['-n', '--target-is-zero', 'v3-top.qcow2', 'OUT'], target: 'full.raw', out: 'raw' },
  { args: ['-n', '-S', '0', 'src.raw', 'OUT'], target: 'bigger.raw', out: 'raw' },
  { args: ['-n', '-f', 'raw', '-O', 'qcow2', 'src.raw', 'OUT'], target: 'v3-full.qcow2', out: 'qcow2' },
  { args: ['-f', 'raw', '-O', 'qcow2', '-S', '512', 'src.raw', 'OUT'], out: 'qcow2' },
  { args: ['-f', 'raw', '-O', 'raw', '-S', '3k', 'src.raw', 'OUT'], out: 'raw' },
  { args: ['-O', 'raw', '-S', '1.5k', 'v3-top.qcow2', 'OUT'], out: 'raw' },
  { args: ['-f', 'raw', '-O', 'qcow2', '-B', 'base.raw', '-F', 'raw', 'src.raw', 'OUT'], out: 'qcow2' },
  // --bitmaps
  { args: ['-O', 'qcow2', '--bitmaps', 'bm.qcow2', 'OUT'], out: 'qcow2', bitmaps: ['a', 'dis', 'fine'] },
  { args: ['-O', 'qcow2', '--bitmaps', '-c', '-o', 'cluster_size=4096', 'bm.qcow2', 'OUT'], out: 'qcow2', bitmaps: ['a', 'dis', 'fine'] },
  { args: ['-O', 'qcow2', '--bitmaps', '-n', 'bm.qcow2', 'OUT'], target: 'hasbm.qcow2', out: 'qcow2', bitmaps: ['own', 'a', 'dis', 'fine'] },
  { args: ['-O', 'qcow2', '--bitmaps', '--skip-broken-bitmaps', 'inuse.qcow2', 'OUT'], out: 'qcow2', bitmaps: ['b2'] },
  { args: ['-O', 'qcow2', '--bitmaps', '--skip-broken-bitmaps', 'bm.qcow2', 'OUT'], out: 'qcow2', bitmaps: ['a', 'dis', 'fine'] },
  { args: ['-O', 'qcow2', '--bitmaps', 'v3-solo.qcow2', 'OUT'], out: 'qcow2', bitmaps: [] },
  // A bitmap that cannot be made stops the rest, in QEMU's order (the last first); those made are kept.
  { args: ['-O', 'qcow2', '--bitmaps', '-n', 'bm.qcow2', 'OUT'], target: 'hasdis.qcow2', out: 'qcow2', bitmaps: ['dis', 'fine'], fails: true },
  { args: ['-O', 'qcow2', '--bitmaps', '-n', 'bm.qcow2', 'OUT'], target: 'large.qcow2', out: 'qcow2', fails: true },
  // qemu-img 7.2 reports this, then stops successfully (writing nothing).
  { args: ['-n', '--target-is-zero', '-B', 'v3-base.qcow2', '-O', 'qcow2', 'v3-top.qcow2', 'OUT'], target: 'v3-full.qcow2', out: 'qcow2' },
];

/** Refused: same exit status, stdout and message; an output only where qemu-img leaves one. */
const REFUSED: Case[] = [
  { args: ['-O', 'qcow2', '-B', 'v3-base.qcow2', 'v3-top.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['-O', 'qcow2', '-o', 'backing_file=v3-base.qcow2', 'v3-top.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['-O', 'qcow2', '-F', 'qcow2', 'v3-top.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['-O', 'qcow2', '-B', 'missing.qcow2', '-F', 'qcow2', 'v3-top.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['-B', 'v3-base.qcow2', '-F', 'qcow2', 'v3-top.qcow2', 'OUT'], out: 'raw' },
  { args: ['-F', 'qcow2', 'v3-top.qcow2', 'OUT'], out: 'raw' },
  { args: ['-c', 'v3-top.qcow2', 'OUT'], out: 'raw' },
  { args: ['--target-is-zero', '-O', 'qcow2', 'v3-top.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['-n', '-o', 'cluster_size=4096', '-O', 'qcow2', 'v3-top.qcow2', 'OUT'], target: 'v3-full.qcow2', out: 'qcow2' },
  { args: ['-n', '-O', 'qcow2', 'v3-top.qcow2', 'OUT'], target: 'v3-small.qcow2', out: 'qcow2' },
  { args: ['-n', 'v3-top.qcow2', 'OUT'], target: 'small.raw', out: 'raw' },
  { args: ['-n', 'v3-top.qcow2', 'OUT'], out: 'raw' },
  { args: ['-n', '-O', 'qcow2', 'v3-top.qcow2', 'OUT'], target: 'full.raw', out: 'qcow2' },
  ...['1000', 'abc', '17M', '1.2k'].map((s): Case => ({ args: ['-S', s, 'v3-top.qcow2', 'OUT'], out: 'raw' })),
  { args: ['-S-1', 'v3-top.qcow2', 'OUT'], out: 'raw' },
  { args: ['--skip-broken-bitmaps', '-O', 'qcow2', 'bm.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['--bitmaps', '-O', 'qcow2', 'inuse.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['--bitmaps', '-O', 'qcow2', 'v2-top.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['--bitmaps', '-O', 'qcow2', 'src.raw', 'OUT'], out: 'qcow2' },
  { args: ['--bitmaps', '-O', 'raw', 'bm.qcow2', 'OUT'], out: 'raw' },
  { args: ['--bitmaps', '-O', 'qcow2', '-o', 'compat=0.10', 'bm.qcow2', 'OUT'], out: 'qcow2' },
  { args: ['--bitmaps', '-n', 'bm.qcow2', 'OUT'], target: 'full.raw', out: 'raw' },
];

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo'] as const) await requireTool(t);
  dir = await mkdtemp(join(tmpdir(), 'qcow2-convert-options-'));
  await buildFixtures();
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const runBoth = (k: Case) => runBothConvert(dir, k, n++);
const info = (image: string, fmt: string) => outputInfo(dir, image, fmt);
const map = (image: string, fmt: string) => outputMap(dir, image, fmt);

describe.concurrent('qcow2 convert with -B, -n, -S, --target-is-zero, --bitmaps does what qemu-img convert does', () => {
  for (const k of CASES) {
    it(`${k.args.join(' ')}${k.target ? ` (into a copy of ${k.target})` : ''}`, async () => {
      const { theirs, ours, qr } = await runBoth(k);
      expect(qr.exitCode, qr.stderr).toBe(k.fails ? 1 : 0);
      if (k.out === 'qcow2') {
        const check = await execa('qemu-img', ['check', ours], { cwd: dir, reject: false });
        expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      }
      expect(await info(ours, k.out)).toEqual(await info(theirs, k.out));
      const cmp = await execa('qemu-img', ['compare', '-f', k.out, '-F', k.out, theirs, ours], { cwd: dir, reject: false });
      expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
      const [mt, mo] = [await map(theirs, k.out), await map(ours, k.out)];
      const offsets = k.offsets !== false;
      expect(withoutHostZeroes(mo, offsets)).toEqual(withoutHostZeroes(mt, offsets));
      if (k.out === 'qcow2') {
        expect(await bitmapsOf(ours, dir)).toEqual(await bitmapsOf(theirs, dir));
        for (const b of k.bitmaps ?? []) expect(await dirtyMap(ours, b, dir), b).toBe(await dirtyMap(theirs, b, dir));
      }
      expect((await stat(join(dir, ours))).size).toBeGreaterThan(0);
    });
  }
});

describe.concurrent('qcow2 convert refuses what qemu-img convert refuses', () => {
  for (const k of REFUSED) {
    it(`${k.args.join(' ')}${k.target ? ` (into a copy of ${k.target})` : ''}`, async () => {
      const { qr } = await runBoth(k);
      expect(qr.exitCode).toBe(1);
    });
  }
});
