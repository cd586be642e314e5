/**
 * `qcow2 measure` against `qemu-img measure` (QEMU 7.2), run with the same arguments:
 *  - `--size N` for sizes from 0 to 1 EiB with several `-o` combinations (cluster sizes, extended
 *    L2, refcount widths, compat=0.10, every preallocation mode, data_file, backing_file), `-O qcow2`
 *    and `-O raw`; sizes qcow2 cannot hold fail as qemu-img fails;
 *  - source images built by qemu-img and qemu-io: raw (sparse, partly and fully written, with an
 *    unaligned size), qcow2 (empty, partly written with zero writes and discards, fully written,
 *    compressed, extended L2 subclusters, metadata-preallocated, 4 KiB clusters, v2, over a qcow2
 *    and over a raw backing file, with persistent bitmaps), measured as -O qcow2 (several -o) and
 *    -O raw, human and JSON;
 *  - command lines qemu-img refuses: same exit status, nothing on stdout, and each of qemu-img's
 *    messages inside ours (`qcow2 measure: usage: ...`, one line).
 * Same stdout and exit status everywhere.
 */
import { execa } from 'execa';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

let dir = '';

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (format: string, file: string, ...cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

/** Source images, built once. */
async function buildSources(): Promise<void> {
  // raw
  await writeFile(join(dir, 'empty.raw'), '');
  await truncate(join(dir, 'empty.raw'), 64 << 20);
  await writeFile(join(dir, 'partial.raw'), '');
  await truncate(join(dir, 'partial.raw'), 64 << 20);
  await io('raw', 'partial.raw', 'write -P 0x11 0 4k', 'write -P 0x22 1M 64k', 'write -P 0x33 5000k 3k', 'write -P 0x44 63M 1M');
  await writeFile(join(dir, 'full.raw'), Buffer.alloc(3 << 20, 0x5a));
  await writeFile(join(dir, 'odd.raw'), Buffer.alloc(100_000, 0x61));
  // qcow2
  await img('create', '-q', '-f', 'qcow2', 'empty.qcow2', '1G');
  await img('create', '-q', '-f', 'qcow2', 'partial.qcow2', '1G');
  await io('qcow2', 'partial.qcow2', 'write -P 0x11 0 4k', 'write -P 0x22 100k 200k', 'write -P 0x33 10M 1M', 'write -z 20M 1M', 'write -P 0x44 30M 1M', 'discard 30M 512k', 'write -P 0x55 1023M 512');
  await img('create', '-q', '-f', 'qcow2', 'full.qcow2', '8M');
  await io('qcow2', 'full.qcow2', 'write -P 0x66 0 8M');
  await img('create', '-q', '-f', 'qcow2', 'compressed.qcow2', '16M');
  await io('qcow2', 'compressed.qcow2', 'write -c -P 0x77 0 1M', 'write -c -P 0x78 4M 64k', 'write -P 0x79 8M 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', 'extl2.qcow2', '64M');
  await io('qcow2', 'extl2.qcow2', 'write -P 0x12 2k 2k', 'write -P 0x13 1M 4k', 'write -z 2M 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', 'prealloc.qcow2', '32M');
  await io('qcow2', 'prealloc.qcow2', 'write -P 0x21 1M 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'small.qcow2', '10M');
  await io('qcow2', 'small.qcow2', 'write -P 0x31 0 6k', 'write -P 0x32 7M 1k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '100M');
  await io('qcow2', 'v2.qcow2', 'write -P 0x41 50M 128k');
  // backing chains: qcow2 over qcow2 (smaller), qcow2 over raw
  await img('create', '-q', '-f', 'qcow2', 'base.qcow2', '32M');
  await io('qcow2', 'base.qcow2', 'write -P 0x51 0 1M', 'write -P 0x52 16M 64k');
  await img('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'overlay.qcow2', '64M');
  await io('qcow2', 'overlay.qcow2', 'write -P 0x53 512k 1M', 'write -z 16M 64k', 'write -P 0x54 40M 64k');
  await img('create', '-q', '-f', 'qcow2', '-b', 'partial.raw', '-F', 'raw', 'over-raw.qcow2');
  await io('qcow2', 'over-raw.qcow2', 'write -P 0x61 2M 64k');
  // internal snapshots of different allocations (-l): s1 1 MiB, s2 3 MiB and a zero cluster, the active state more
  await img('create', '-q', '-f', 'qcow2', 'snap.qcow2', '16M');
  await io('qcow2', 'snap.qcow2', 'write -P 0x71 0 1M');
  await img('snapshot', '-c', 's1', 'snap.qcow2');
  await io('qcow2', 'snap.qcow2', 'write -P 0x72 1M 2M', 'write -z 8M 64k');
  await img('snapshot', '-c', 's2', 'snap.qcow2');
  await io('qcow2', 'snap.qcow2', 'write -P 0x73 10M 4M');
  // persistent bitmaps
  await img('create', '-q', '-f', 'qcow2', 'bitmaps.qcow2', '1G');
  await img('bitmap', '--add', 'bitmaps.qcow2', 'b0');
  await img('bitmap', '--add', '-g', '512', 'bitmaps.qcow2', 'a-rather-long-bitmap-name-of-forty-bytes');
  await img('bitmap', '--add', '-g', '2M', 'bitmaps.qcow2', 'coarse');
  await io('qcow2', 'bitmaps.qcow2', 'write -P 0x71 0 64k');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', 'bitmaps-512.qcow2', '100M');
  await img('bitmap', '--add', '-g', '512', 'bitmaps-512.qcow2', 'fine');
}

const SOURCES = [
  'empty.raw', 'partial.raw', 'full.raw', 'odd.raw',
  'empty.qcow2', 'partial.qcow2', 'full.qcow2', 'compressed.qcow2', 'extl2.qcow2', 'prealloc.qcow2', 'small.qcow2', 'v2.qcow2',
  'base.qcow2', 'overlay.qcow2', 'over-raw.qcow2', 'bitmaps.qcow2', 'bitmaps-512.qcow2',
];

/** Target options measured for every source (as -O qcow2 -o ...; '' is none). */
const SOURCE_TARGETS = ['', 'cluster_size=4k', 'cluster_size=2M,extended_l2=on', 'compat=0.10', 'refcount_bits=1,cluster_size=512', 'preallocation=full', 'backing_file=x'];

const SIZES = ['0', '1000', '1M', '1G', '1073741825', '1T', '1P', '1E', '9223372036854775807'];
const SIZE_OPTIONS = [
  '', 'cluster_size=512', 'cluster_size=4k', 'cluster_size=2M', 'extended_l2=on', 'extended_l2=on,cluster_size=2M',
  'refcount_bits=1', 'refcount_bits=64', 'compat=0.10', 'compat=1.1,lazy_refcounts=on', 'preallocation=metadata', 'preallocation=falloc',
  'preallocation=full,cluster_size=4k', 'data_file=d.raw,data_file_raw=on', 'backing_file=b.qcow2', 'size=5M',
];

/** Runs both; same exit status and stdout; on failure, each qemu-img message is in ours. */
async function same(args: string[]): Promise<{ stdout: string }> {
  const q = await execa('qemu-img', ['measure', ...args], { cwd: dir, reject: false });
  const r = await qcow2(['measure', ...args], { cwd: dir });
  expect(r.stdout, r.stderr).toBe(q.stdout);
  expect(r.exitCode).toBe(q.exitCode);
  if (q.exitCode === 0) {
    expect(r.stderr).toBe('');
  } else {
    expect(r.stderr).toMatch(/^qcow2 measure: usage: [^\n]*$/);
    for (const line of q.stderr.split('\n')) {
      if (line.startsWith('qemu-img: ')) expect(r.stderr).toContain(line.slice('qemu-img: '.length));
    }
  }
  return q;
}

const withOptions = (o: string) => (o === '' ? [] : ['-o', o]);

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-measure-'));
  await buildSources();
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 measure --size matches qemu-img measure', () => {
  for (const o of SIZE_OPTIONS) {
    it(`-O qcow2 ${o || '(defaults)'}`, async () => {
      for (const size of SIZES) await same(['--size', size, '-O', 'qcow2', ...withOptions(o)]);
      await same(['--output=json', '--size', '1G', '-O', 'qcow2', ...withOptions(o)]);
    });
  }
  it('-O raw and the default target', async () => {
    for (const size of SIZES) {
      await same(['--size', size]);
      await same(['--size', size, '-O', 'raw', '--output=json']);
    }
    await same(['--size', '1G', '-O', 'raw', '-o', 'preallocation=full,nocow=on,extent_size_hint=1M']);
  });
});

describe.concurrent('qcow2 measure IMAGE matches qemu-img measure', () => {
  for (const source of SOURCES) {
    it(source, async () => {
      for (const o of SOURCE_TARGETS) await same(['-O', 'qcow2', ...withOptions(o), source]);
      const json = await same(['--output=json', '-O', 'qcow2', source]);
      expect(JSON.parse(json.stdout)).toHaveProperty('required');
      await same(['-O', 'raw', source]);
      await same(['--output=json', source]);
      const format = source.endsWith('.raw') ? 'raw' : 'qcow2';
      await same(['-f', format, '-O', 'qcow2', source]);
    });
  }
  for (const l of ['s1', '1', 's2', 'snapshot.id=2', 'snapshot.name=s1', 'snapshot.id=2,snapshot.name=s2']) {
    it(`-l ${l}`, async () => {
      await same(['-l', l, '-O', 'qcow2', 'snap.qcow2']);
      await same(['-l', l, '--output=json', '-O', 'qcow2', '-o', 'cluster_size=4k', 'snap.qcow2']);
      await same(['-l', l, 'snap.qcow2']);
    });
  }
  it('reads a qcow2 image as raw with -f raw', async () => {
    await same(['-f', 'raw', '-O', 'qcow2', 'partial.qcow2']);
  });
});

describe.concurrent('qcow2 measure refuses what qemu-img refuses', () => {
  const REFUSED: [string, string[]][] = [
    ['neither --size nor a file', ['-O', 'qcow2']],
    ['both --size and a file', ['--size', '1G', 'empty.qcow2']],
    ['two files', ['empty.qcow2', 'full.qcow2']],
    ['-f without a file', ['-f', 'qcow2', '--size', '1G']],
    ['-l without a file', ['-l', 's1', '--size', '1G']],
    ['-l of a missing snapshot', ['-l', 'nosuch', '-O', 'qcow2', 'snap.qcow2']],
    ['-l of an ID and a name of different snapshots', ['-l', 'snapshot.id=1,snapshot.name=s2', 'snap.qcow2']],
    ['-l of a raw image', ['-l', 's1', 'partial.raw']],
    ['-l of a qcow2 image read as raw', ['-l', 's1', '-f', 'raw', 'snap.qcow2']],
    ['unknown -O format', ['--size', '1G', '-O', 'foo']],
    ['bad --output', ['--output=xml', '--size', '1G']],
    ['bad --size', ['--size', 'abc']],
    ['negative --size', ['--size', '-1']],
    ['--size too large', ['--size', '8E']],
    ['missing file', ['nothere.qcow2']],
    ['raw file read as qcow2', ['-f', 'qcow2', 'full.raw']],
    ['empty option list', ['--size', '1G', '-O', 'qcow2', '-o', '']],
    ['option list with a leading comma', ['--size', '1G', '-O', 'qcow2', '-o', ',cluster_size=4k']],
    ['unknown option', ['--size', '1G', '-O', 'qcow2', '-o', 'foo=bar']],
    ['-o help is no option of measure', ['--size', '1G', '-O', 'qcow2', '-o', 'help']],
    ['qcow2 option for a raw target', ['--size', '1G', '-O', 'raw', '-o', 'cluster_size=4k']],
    ['bad boolean', ['--size', '1G', '-O', 'qcow2', '-o', 'extended_l2=maybe']],
    ['bad size option', ['--size', '1G', '-O', 'qcow2', '-o', 'cluster_size=abc']],
    ['extended_l2 with 4k clusters', ['--size', '1G', '-O', 'qcow2', '-o', 'extended_l2=on,cluster_size=4k']],
    ['extended_l2 with 8k clusters, from a file', ['-O', 'qcow2', '-o', 'extended_l2=on,cluster_size=8k', 'partial.qcow2']],
    ['cluster_size=1000', ['--size', '1G', '-O', 'qcow2', '-o', 'cluster_size=1000']],
    ['cluster_size=4M', ['--size', '1G', '-O', 'qcow2', '-o', 'cluster_size=4M']],
    ['compat=v2 (create takes it, measure does not)', ['--size', '1G', '-O', 'qcow2', '-o', 'compat=v2']],
    ['refcount_bits=3', ['--size', '1G', '-O', 'qcow2', '-o', 'refcount_bits=3']],
    ['refcount_bits=0', ['--size', '1G', '-O', 'qcow2', '-o', 'refcount_bits=0']],
    ['refcount_bits=8 compat=0.10', ['--size', '1G', '-O', 'qcow2', '-o', 'refcount_bits=8,compat=0.10']],
    ['preallocation=bogus', ['--size', '1G', '-O', 'qcow2', '-o', 'preallocation=bogus']],
    ['too large for 512-byte clusters', ['--size', '1T', '-O', 'qcow2', '-o', 'cluster_size=512']],
    ['too large by -o size with a file', ['-O', 'qcow2', '-o', 'size=1E', 'empty.qcow2']],
  ];
  for (const [name, args] of REFUSED) {
    it(name, async () => {
      await same(args);
    });
  }
});

describe('qcow2 measure beyond qemu-img', () => {
  it('refuses targets it does not compute, with typed errors', async () => {
    const vmdk = await qcow2(['measure', '--size', '1G', '-O', 'vmdk'], { cwd: dir });
    expect(vmdk.exitCode).toBe(1);
    expect(vmdk.stderr).toBe('qcow2 measure: unsupported: measure: only qcow2 and raw targets can be measured (-O vmdk)');
  });
});
