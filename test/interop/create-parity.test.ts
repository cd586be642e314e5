/**
 * `qcow2 create` against `qemu-img create -f qcow2` (QEMU 7.2), run with the same arguments in two
 * directories. For every combination:
 *  - both succeed and print the same `Formatting ...` line;
 *  - `qemu-img check` finds nothing wrong with ours;
 *  - `qemu-img info --output=json` says the same of both (except filename, actual-size, and the
 *    directory part of paths);
 *  - `qemu-img compare` finds the two images identical (external data files named explicitly:
 *    QEMU 7.2 looks for them relative to its working directory, not to the image);
 *  - the image files (and external data files) are byte-identical: every combination here is;
 *  - preallocation=falloc and full: where qemu-img's file has at least its preallocated range
 *    allocated, ours does too (`stat` blocks; how much more the metadata takes is the host
 *    file system's and the writer's affair).
 * And for combinations qemu-img refuses, ours refuses too, prints the same, and leaves no file.
 */
import { execa } from 'execa';
import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchDir } from '../../src/verification/crash/workload.js';
import { qcow2 } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

interface Case {
  name: string;
  /** Arguments after `create -f qcow2`. */
  args: string[];
  /** The image path in `args`. */
  image?: string;
  /** The external data file the creation writes, if any. */
  dataFile?: string;
  /** Skip `qemu-img compare`, which walks the whole virtual disk (too slow for exabytes). */
  noCompare?: boolean;
  /** preallocation=falloc or full: the file whose storage is preallocated (the image or the data file). */
  allocates?: string;
}

const IMG = 'img.qcow2';
let root = '';

/** Files every case starts with: qcow2 and raw backing files (identical in both directories). */
async function setup(dir: string): Promise<void> {
  await mkdir(join(dir, 'sub'), { recursive: true });
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '3M']);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', join(dir, 'sub', 'b2.qcow2'), '5M']);
  // 1000 bytes: a raw backing file's size is rounded up to 512-byte sectors.
  await writeFile(join(dir, 'base.raw'), Buffer.alloc(1000, 0x61));
}

function c(name: string, args: string[], extra: Omit<Case, 'name' | 'args'> = {}): Case {
  return { name, args, ...extra };
}

const o = (opts: string, ...rest: string[]) => ['-o', opts, IMG, ...rest];

const CASES: Case[] = [
  c('defaults 1G', [IMG, '1G']),
  c('quiet', ['-q', IMG, '1G']),
  ...['0.10', 'v2', '1.1', 'v3'].map((v) => c(`compat=${v}`, o(`compat=${v}`, '1G'))),
  ...['512', '4k', '64k', '2M'].flatMap((cs) =>
    [1, 2, 4, 8, 16, 32, 64].map((rb) => c(`cluster_size=${cs} refcount_bits=${rb}`, o(`cluster_size=${cs},refcount_bits=${rb}`, '64M'))),
  ),
  // Preallocation of an odd size (64 MiB + 512): many L2 tables, refcount blocks and refcount
  // table growth with small clusters and wide refcounts.
  ...['512', '64k'].flatMap((cs) =>
    [1, 2, 4, 8, 16, 32, 64].map((rb) =>
      c(`preallocation=metadata cluster_size=${cs} refcount_bits=${rb}`, o(`preallocation=metadata,cluster_size=${cs},refcount_bits=${rb}`, '67109376')),
    ),
  ),
  c('preallocation=metadata cluster_size=4k', o('preallocation=metadata,cluster_size=4k', '100M')),
  c('preallocation=metadata cluster_size=2M', o('preallocation=metadata,cluster_size=2M', '1G')),
  c('preallocation=metadata 1G', o('preallocation=metadata', '1G')),
  c('preallocation=off', o('preallocation=off', '1G')),
  ...['16k', '64k', '2M'].flatMap((cs) => [
    c(`extended_l2 cluster_size=${cs}`, o(`extended_l2=on,cluster_size=${cs}`, '1073741825')),
    c(`extended_l2 preallocation=metadata cluster_size=${cs}`, o(`extended_l2=on,preallocation=metadata,cluster_size=${cs}`, '100M')),
  ]),
  c('extended_l2 preallocation, partial subcluster', o('extended_l2=on,preallocation=metadata', '1049088')),
  c('compression_type=zstd', o('compression_type=zstd', '1G')),
  c('zstd + extended_l2 + lazy_refcounts + refcount_bits=8', o('compression_type=zstd,extended_l2=on,lazy_refcounts=on,refcount_bits=8', '1G')),
  c('lazy_refcounts', o('lazy_refcounts=on', '1G')),
  c('lazy_refcounts preallocation=metadata', o('lazy_refcounts=on,preallocation=metadata', '1G')),
  c('compat=0.10 preallocation=metadata', o('compat=0.10,preallocation=metadata', '100M')),
  c('data_file', o('data_file=d.raw', '1G'), { dataFile: 'd.raw' }),
  c('data_file odd size', o('data_file=d.raw', '1000'), { dataFile: 'd.raw' }),
  c('data_file preallocation=metadata', o('data_file=d.raw,preallocation=metadata', '1049088'), { dataFile: 'd.raw' }),
  c('data_file_raw', o('data_file=d.raw,data_file_raw=on', '1G'), { dataFile: 'd.raw' }),
  c('data_file_raw extended_l2', o('data_file=d.raw,data_file_raw=on,extended_l2=on', '1049088'), { dataFile: 'd.raw' }),
  c('data_file_raw cluster_size=512 refcount_bits=1', o('data_file=d.raw,data_file_raw=on,cluster_size=512,refcount_bits=1', '16M'), { dataFile: 'd.raw' }),
  c('data_file in a subdirectory', o('data_file=sub/d.raw', '1M'), { dataFile: 'sub/d.raw' }),
  c('backing qcow2, size from it', ['-b', 'base.qcow2', '-F', 'qcow2', IMG]),
  c('backing qcow2, explicit size', ['-b', 'base.qcow2', '-F', 'qcow2', IMG, '2G']),
  c('backing raw, size from it (rounded to 512)', ['-b', 'base.raw', '-F', 'raw', IMG]),
  c('backing raw, explicit size', ['-b', 'base.raw', '-F', 'raw', IMG, '1G']),
  c('backing qcow2 read as raw', ['-b', 'base.qcow2', '-F', 'raw', IMG]),
  c('backing by -o', o('backing_file=base.qcow2,backing_fmt=qcow2')),
  c('backing relative to the image directory', ['-b', 'b2.qcow2', '-F', 'qcow2', 'sub/img.qcow2'], { image: 'sub/img.qcow2' }),
  c('backing in the parent directory', ['-b', '../base.qcow2', '-F', 'qcow2', 'sub/img.qcow2'], { image: 'sub/img.qcow2' }),
  c('backing unsafe (-u)', ['-u', '-b', 'base.qcow2', '-F', 'qcow2', IMG, '1G']),
  c('backing + extended_l2 + preallocation', ['-o', 'extended_l2=on,preallocation=metadata', '-b', 'base.qcow2', '-F', 'qcow2', IMG]),
  c('backing + data_file', ['-o', 'data_file=d.raw', '-b', 'base.qcow2', '-F', 'qcow2', IMG], { dataFile: 'd.raw' }),
  c('backing compat=0.10', ['-o', 'compat=0.10', '-b', 'base.qcow2', '-F', 'qcow2', IMG]),
  c('backing cluster_size=512', ['-o', 'cluster_size=512', '-b', 'base.raw', '-F', 'raw', IMG, '10M']),
  c('size 0', [IMG, '0']),
  c('size 0 preallocated', o('preallocation=metadata', '0')),
  ...(['falloc', 'full'] as const).flatMap((mode) => [
    c(`preallocation=${mode}`, o(`preallocation=${mode}`, '3M'), { allocates: IMG }),
    c(`preallocation=${mode} odd size`, o(`preallocation=${mode}`, '3333k'), { allocates: IMG }),
    c(`preallocation=${mode} cluster_size=512 refcount_bits=64`, o(`preallocation=${mode},cluster_size=512,refcount_bits=64`, '4M'), { allocates: IMG }),
    c(`preallocation=${mode} cluster_size=4k`, o(`preallocation=${mode},cluster_size=4k`, '5M'), { allocates: IMG }),
    c(`preallocation=${mode} extended_l2`, o(`preallocation=${mode},extended_l2=on`, '3333k'), { allocates: IMG }),
    c(`preallocation=${mode} compat=0.10`, o(`preallocation=${mode},compat=0.10`, '3M'), { allocates: IMG }),
    c(`preallocation=${mode} lazy_refcounts`, o(`preallocation=${mode},lazy_refcounts=on`, '3M'), { allocates: IMG }),
    c(`preallocation=${mode} size 0`, o(`preallocation=${mode}`, '0'), { allocates: IMG }),
    c(`preallocation=${mode} data_file`, o(`data_file=d.raw,preallocation=${mode}`, '3M'), { dataFile: 'd.raw', allocates: 'd.raw' }),
    c(`preallocation=${mode} data_file odd size`, o(`data_file=d.raw,preallocation=${mode}`, '3333k'), { dataFile: 'd.raw', allocates: 'd.raw' }),
    c(`preallocation=${mode} data_file_raw`, o(`data_file=d.raw,data_file_raw=on,preallocation=${mode}`, '3M'), { dataFile: 'd.raw', allocates: 'd.raw' }),
    c(`preallocation=${mode} backing + extended_l2`, ['-o', `extended_l2=on,preallocation=${mode}`, '-b', 'base.qcow2', '-F', 'qcow2', IMG], { allocates: IMG }),
  ]),
  c('size 1', [IMG, '1']),
  c('size 1000', [IMG, '1000']),
  c('size 1G+1', [IMG, '1073741825']),
  c('size 1.5G', [IMG, '1.5G']),
  c('size 1.99999999999999999999k (the fraction wraps to 0)', [IMG, '1.99999999999999999999k']),
  c('size 1T', [IMG, '1T']),
  c('size 1P', [IMG, '1P']),
  c('size by -o size=', o('size=5M')),
  c('cluster_size=512 at its 128G maximum', o('cluster_size=512', '128G')),
  c('cluster_size=2M 1E', o('cluster_size=2M', '1E'), { noCompare: true }),
];

/** Combinations qemu-img refuses. */
const REFUSED: Case[] = [
  c('compat=0.10 extended_l2', o('compat=0.10,extended_l2=on', '1M')),
  c('extended_l2 with 8k clusters', o('extended_l2=on,cluster_size=8k', '1M')),
  c('cluster_size=1000', o('cluster_size=1000', '1M')),
  c('cluster_size=4M', o('cluster_size=4M', '1M')),
  c('refcount_bits=3', o('refcount_bits=3', '1M')),
  c('refcount_bits=128', o('refcount_bits=128', '1M')),
  c('refcount_bits=8 compat=0.10', o('refcount_bits=8,compat=0.10', '1M')),
  c('zstd compat=0.10', o('compression_type=zstd,compat=0.10', '1M')),
  c('compression_type=lzo', o('compression_type=lzo', '1M')),
  c('lazy_refcounts compat=0.10', o('lazy_refcounts=on,compat=0.10', '1M')),
  c('data_file compat=0.10', o('data_file=d.raw,compat=0.10', '1M'), { dataFile: 'd.raw' }),
  c('data_file_raw without data_file', o('data_file_raw=on', '1M')),
  c('data_file_raw with backing', ['-o', 'data_file=d.raw,data_file_raw=on', '-b', 'base.qcow2', '-F', 'qcow2', IMG], { dataFile: 'd.raw' }),
  c('backing with preallocation', ['-o', 'preallocation=metadata', '-b', 'base.qcow2', '-F', 'qcow2', IMG]),
  c('backing format without backing file', ['-F', 'qcow2', IMG, '1M']),
  c('backing file without backing format', ['-b', 'base.qcow2', IMG]),
  c('missing backing file', ['-b', 'nothere.qcow2', '-F', 'qcow2', IMG, '1M']),
  c('raw backing file read as qcow2', ['-b', 'base.raw', '-F', 'qcow2', IMG]),
  c('unknown backing format', ['-u', '-b', 'base.qcow2', '-F', 'foo', IMG, '1M']),
  c('same name as the backing file', ['-b', IMG, '-F', 'qcow2', IMG, '1M']),
  c('compat=2', o('compat=2', '1M')),
  c('preallocation=bogus', o('preallocation=bogus', '1M')),
  c('unknown option', o('foo=bar', '1M')),
  c('bad boolean', o('lazy_refcounts=maybe', '1M')),
  c('no size', [IMG]),
  c('size twice', o('size=1M', '1M')),
  c('fractional size without suffix', [IMG, '1.5']),
  c('size too large for qcow2', [IMG, '7E']),
  c('size too large for 512-byte clusters', o('cluster_size=512', '129G')),
  c('size beyond the block layer maximum', [IMG, '9223372036854775296']),
  c('header does not fit', o(`cluster_size=512,data_file=${'./'.repeat(200)}d.raw,data_file_raw=on`, '1M')),
  c('backing name does not fit', ['-o', 'cluster_size=512', '-u', '-b', 'y'.repeat(400), '-F', 'qcow2', IMG, '1M']),
];

function normalizeInfo(json: string, dir: string): unknown {
  const data = JSON.parse(json.split(dir).join('<dir>')) as Record<string, unknown>;
  delete data['filename'];
  delete data['actual-size'];
  return data;
}

/** Undefined when the files are identical, else where they first differ. */
async function difference(a: string, b: string): Promise<string | undefined> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.size !== sb.size) return `lengths differ: ${sa.size} (qemu-img) vs ${sb.size} (ours)`;
  const chunk = 1 << 20;
  const [fa, fb] = await Promise.all([open(a), open(b)]);
  try {
    const ba = Buffer.alloc(chunk);
    const bb = Buffer.alloc(chunk);
    for (let pos = 0; pos < sa.size; pos += chunk) {
      const n = Math.min(chunk, sa.size - pos);
      await Promise.all([fa.read(ba, 0, n, pos), fb.read(bb, 0, n, pos)]);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) {
        let i = 0;
        while (ba[i] === bb[i]) i++;
        return `first difference at 0x${(pos + i).toString(16)}`;
      }
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
  return undefined;
}

/**
 * The image as a `json:` filename for `qemu-img compare`: QEMU 7.2 opens an external data file
 * relative to its working directory (not the image's), so it is named explicitly; backing files are
 * found relative to the image.
 */
function spec(dir: string, image: string, dataFile: string | undefined): string {
  const file = { driver: 'file', filename: join(dir, image) };
  const data = dataFile === undefined ? {} : { 'data-file': { driver: 'file', filename: join(dir, dataFile) } };
  return `json:${JSON.stringify({ driver: 'qcow2', file, ...data })}`;
}

async function dirs(name: string): Promise<{ theirs: string; ours: string }> {
  const base = join(root, name.replace(/[^a-zA-Z0-9=._-]+/g, '_'));
  const theirs = join(base, 'qemu-img');
  const ours = join(base, 'qcow2');
  await Promise.all([setup(theirs), setup(ours)]);
  return { theirs, ours };
}

beforeAll(async () => {
  await requireTool('qemu-img');
  // In memory where the machine has it: qemu-img's preallocation=metadata syncs once per L2 table
  // (14 209 fdatasyncs for 64 MiB of 512-byte clusters), which on a busy disk took over a minute.
  root = await scratchDir('qcow2-create-parity-');
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe.concurrent('qcow2 create matches qemu-img create', () => {
  for (const k of CASES) {
    it(k.name, async ({ expect }) => {
      const { theirs, ours } = await dirs(k.name);
      const image = k.image ?? IMG;
      const q = await execa('qemu-img', ['create', '-f', 'qcow2', ...k.args], { cwd: theirs, reject: false });
      expect(q.exitCode, q.stderr).toBe(0);
      const r = await qcow2(['create', '-f', 'qcow2', ...k.args], { cwd: ours });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe(q.stdout);

      const check = await execa('qemu-img', ['check', image], { cwd: ours, reject: false });
      expect(check.exitCode, `${check.stdout}\n${check.stderr}`).toBe(0);

      const [qi, ri] = await Promise.all([
        execa('qemu-img', ['info', '--output=json', image], { cwd: theirs }),
        execa('qemu-img', ['info', '--output=json', image], { cwd: ours }),
      ]);
      expect(normalizeInfo(ri.stdout, ours)).toEqual(normalizeInfo(qi.stdout, theirs));

      if (!k.noCompare) {
        const cmp = await execa('qemu-img', ['compare', spec(ours, image, k.dataFile), spec(theirs, image, k.dataFile)], { reject: false });
        expect(cmp.exitCode, `${cmp.stdout}\n${cmp.stderr}`).toBe(0);
      }

      for (const f of [image, ...(k.dataFile === undefined ? [] : [k.dataFile])]) {
        expect(await difference(join(theirs, f), join(ours, f)), f).toBeUndefined();
      }
      if (k.allocates !== undefined) {
        // The preallocated range is the virtual size rounded up to clusters at most; qemu-img's
        // file holding that much, ours must too.
        const [qs, rs] = await Promise.all([stat(join(theirs, k.allocates)), stat(join(ours, k.allocates))]);
        const virtual = (JSON.parse(qi.stdout) as { 'virtual-size': number })['virtual-size'];
        if (qs.blocks * 512 >= virtual) expect(rs.blocks * 512, k.allocates).toBeGreaterThanOrEqual(virtual);
      }
    });
  }
});

describe.concurrent('qcow2 create refuses what qemu-img refuses', () => {
  for (const k of REFUSED) {
    it(k.name, async ({ expect }) => {
      const { theirs, ours } = await dirs(`refused ${k.name}`);
      const before = await readdir(ours, { recursive: true });
      const q = await execa('qemu-img', ['create', '-f', 'qcow2', ...k.args], { cwd: theirs, reject: false });
      expect(q.exitCode).not.toBe(0);
      const r = await qcow2(['create', '-f', 'qcow2', ...k.args], { cwd: ours });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^qcow2 create: usage: /);
      // The "Formatting" line is printed exactly when qemu-img prints it (before the checks of
      // option combinations, after the checks of the arguments themselves).
      expect(r.stdout).toBe(q.stdout);
      // Nothing is left behind (qemu-img deletes what it created; we create nothing).
      expect((await readdir(ours, { recursive: true })).sort()).toEqual(before.sort());
      expect((await readdir(theirs, { recursive: true })).sort()).toEqual(before.sort());
    });
  }
});

describe('qcow2 create beyond qemu-img', () => {
  it('truncates an existing data file, as qemu-img does', async () => {
    const { theirs, ours } = await dirs('existing data file');
    for (const dir of [theirs, ours]) await writeFile(join(dir, 'd.raw'), Buffer.alloc(3 << 20, 0x5a));
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=d.raw', IMG, '1M'], { cwd: theirs });
    const r = await qcow2(['create', '-q', '-f', 'qcow2', '-o', 'data_file=d.raw', IMG, '1M'], { cwd: ours });
    expect(r.exitCode).toBe(0);
    expect(await difference(join(theirs, 'd.raw'), join(ours, 'd.raw'))).toBeUndefined();
    expect((await stat(join(ours, 'd.raw'))).size).toBe(1 << 20);
  });

  it('lists its options with -o help', async () => {
    const r = await qcow2(['create', '-o', 'help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('cluster_size=<size>');
    expect(r.stdout).toContain('refcount_bits=<num>');
  });
});
