/**
 * `qcow2 map` prints what `qemu-img map` (QEMU 7.2) prints, byte for byte: on every corpus image
 * (but the LUKS one, which QEMU maps only with the secret), as JSON and as the human table (with its
 * exit status: the table refuses compressed clusters), and on extra images built here for the rules
 * the corpus does not reach: raw backing files with holes and an unaligned size, overlays larger than
 * a qcow2 backing, metadata preallocation (with extended L2, partial writes, a file truncated short,
 * and either side of QEMU's detection threshold), external data files (data_file_raw, and a zero
 * cluster at host offset 0), `-f raw`, an empty disk, and --start-offset/--max-length.
 */
import { execa } from 'execa';
import { mkdtemp, open, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCorpus } from '../../src/verification/corpus/build.js';
import { RECIPES } from '../../src/verification/corpus/recipes.js';
import { qcow2 } from '../support/cli.js';
import { getCorpusImage } from './corpus.js';

const KiB = 1024;
const MiB = 1024 * KiB;

async function qemuMap(args: string[], cwd: string) {
  return execa('qemu-img', ['map', ...args], { cwd, reject: false });
}

type Run = { stdout: string; stderr: string; exitCode?: number };

/** Flushes the files to disk: freshly written files change their SEEK_DATA/SEEK_HOLE and st_blocks answers as they are written back. */
async function settle(paths: string[]): Promise<void> {
  for (const path of paths) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

/**
 * Runs qemu-img, then us, and checks. QEMU's answers depend on the file system (holes, allocated
 * blocks), which may still change under a file just written (ext4 turns written-back zero ranges into
 * holes): when we differ from QEMU, QEMU is asked again, and only if its own answer changed meanwhile
 * is the comparison retried (at most 3 times); otherwise the difference is ours and fails.
 */
async function compareWithQemu(theirs: () => Promise<Run>, ours: () => Promise<Run>, check: (ours: Run, theirs: Run) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const before = await theirs();
    const mine = await ours();
    if (mine.stdout === before.stdout && mine.exitCode === before.exitCode) return check(mine, before);
    const after = await theirs();
    if (after.stdout === before.stdout || attempt === 3) return check(mine, after);
  }
}

/** Same text, and (for a readable diff when not) the same parsed entries. */
function expectSameJson(ours: Run, theirs: Run): void {
  expect(theirs.exitCode).toBe(0);
  expect(ours.stderr).toBe('');
  expect(ours.exitCode).toBe(0);
  expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
  expect(ours.stdout).toBe(theirs.stdout);
}

/** The human table: same stdout and exit status; the compressed-cluster refusal as a typed error. */
function expectSameHuman(ours: Run, theirs: Run): void {
  expect(ours.stdout).toBe(theirs.stdout);
  expect(ours.exitCode).toBe(theirs.exitCode);
  if (theirs.exitCode !== 0) {
    expect(theirs.stderr).toContain('File contains external, encrypted or compressed clusters.');
    expect(ours.stderr).toBe('qcow2 map: unsupported: File contains external, encrypted or compressed clusters.');
  } else {
    expect(ours.stderr).toBe('');
  }
}

const mappable = RECIPES.filter((r) => !r.features.some((f) => f.startsWith('encryption=')));

describe('qcow2 map --output=json matches qemu-img map on the corpus', () => {
  for (const recipe of mappable) {
    it(recipe.name, async () => {
      const image = await getCorpusImage(recipe.name);
      await settle([image.image, ...image.sideFiles]);
      await compareWithQemu(
        () => qemuMap(['--output=json', ...image.openArgs], image.dir),
        () => qcow2(['map', '--output=json', image.image], { cwd: image.dir }),
        expectSameJson,
      );
    });
  }
});

describe('qcow2 map (human table) matches qemu-img map on the corpus', () => {
  for (const recipe of mappable) {
    it(recipe.name, async () => {
      const image = await getCorpusImage(recipe.name);
      await settle([image.image, ...image.sideFiles]);
      // A relative name, so the File column shows what was typed (and backing names combine with it).
      await compareWithQemu(
        () => qemuMap(['-f', 'qcow2', recipe.image], image.dir),
        () => qcow2(['map', recipe.image], { cwd: image.dir }),
        expectSameHuman,
      );
    });
  }
});

describe('qcow2 map matches qemu-img map on images built here', () => {
  let dir = '';
  const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
  const io = (file: string, fmt: string, ...cmds: string[]) => execa('qemu-io', ['-f', fmt, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });
  /** A sparse file of `size` bytes with `fill` written over each [offset, length]. */
  const sparse = async (name: string, size: number, writes: Array<[number, number, number]>) => {
    const fh = await open(join(dir, name), 'w');
    try {
      for (const [offset, length, fill] of writes) await fh.write(new Uint8Array(length).fill(fill), 0, length, offset);
      await fh.truncate(size);
    } finally {
      await fh.close();
    }
  };
  const same = async (args: string[], qemuArgs: string[] = args) => {
    await settle((await readdir(dir)).map((f) => join(dir, f)));
    let entries: Array<Record<string, unknown>> = [];
    await compareWithQemu(
      () => qemuMap(['--output=json', ...qemuArgs], dir),
      () => qcow2(['map', '--output=json', ...args], { cwd: dir }),
      (ours, theirs) => {
        expectSameJson(ours, theirs);
        entries = JSON.parse(ours.stdout) as Array<Record<string, unknown>>;
      },
    );
    await compareWithQemu(
      () => qemuMap(qemuArgs, dir),
      () => qcow2(['map', ...args], { cwd: dir }),
      expectSameHuman,
    );
    return entries;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qcow2-map-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('raw backing file with holes and an unaligned size, under a larger overlay', async () => {
    await sparse('base.raw', MiB + 1000, [
      [0, 5000, 1],
      [300_000, 10, 2],
      [MiB - 3000, 4000, 3], // data up to the unaligned end of the file
    ]);
    await img('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', 'raw-overlay.qcow2', String(2 * MiB));
    await io('raw-overlay.qcow2', 'qcow2', 'write -P 4 65536 4096', 'write -z 131072 65536', 'write -P 5 1048576 512');
    const entries = await same(['raw-overlay.qcow2'], ['-f', 'qcow2', 'raw-overlay.qcow2']);
    // The raw file's holes show as zero at depth 1, with the guest offset.
    expect(entries).toContainEqual(expect.objectContaining({ depth: 1, present: true, zero: true, data: false }));
  });

  it('qcow2 backing shorter than the overlay, with an unaligned size and a write across its end', async () => {
    await img('create', '-q', '-f', 'qcow2', 'short.qcow2', '1000000');
    await io('short.qcow2', 'qcow2', 'write -P 6 900000 100000', 'write -P 7 0 1000');
    await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'short.qcow2', '-F', 'qcow2', 'long.qcow2', String(4 * MiB));
    await io('long.qcow2', 'qcow2', 'write -P 8 983040 65536', 'write -P 9 3000000 10');
    await same(['long.qcow2'], ['-f', 'qcow2', 'long.qcow2']);
  });

  it('metadata preallocation with partial, zero and discarding writes', async () => {
    const writes = [
      'write -P 1 1000 3000',
      `write -P 2 ${65536 + 3 * 2048} 2048`,
      'write -z 131072 2048',
      'write -z -u 196608 65536',
      'discard 262144 65536',
      `write -P 3 ${4 * MiB - 100} 200`,
    ];
    await img('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', 'prealloc.qcow2', String(8 * MiB));
    await io('prealloc.qcow2', 'qcow2', ...writes);
    const entries = await same(['prealloc.qcow2'], ['-f', 'qcow2', 'prealloc.qcow2']);
    // The file's holes inside preallocated clusters show as zero data.
    expect(entries).toContainEqual(expect.objectContaining({ zero: true, data: true }));
    // With extended L2, preallocated clusters have no allocated subcluster: offsets, but not present.
    await img('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata,extended_l2=on', 'prealloc-extl2.qcow2', String(8 * MiB));
    await io('prealloc-extl2.qcow2', 'qcow2', ...writes);
    const ext = await same(['prealloc-extl2.qcow2'], ['-f', 'qcow2', 'prealloc-extl2.qcow2']);
    expect(ext).toContainEqual(expect.objectContaining({ present: false, zero: true, data: false, offset: expect.any(Number) }));
  });

  it('metadata preallocation with the image file truncated short (data past its end reads as zero)', async () => {
    await img('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', 'cut.qcow2', String(8 * MiB));
    await io('cut.qcow2', 'qcow2', 'write -P 1 0 100000');
    await truncate(join(dir, 'cut.qcow2'), 2_000_000); // not a multiple of 512
    await same(['cut.qcow2'], ['-f', 'qcow2', 'cut.qcow2']);
  });

  it('mapping a freshly written image leaves its holes as QEMU sees them', async () => {
    // QEMU fills the rest of a newly allocated cluster with a zero write (unwritten extents on ext4),
    // and on ext4 pages cached over unwritten extents count as data for SEEK_DATA. Reading more than
    // the metadata (kernel readahead into data clusters) would change our answer and every later one:
    // on a freshly built image (one where QEMU's preallocation guess fires), QEMU before, us and QEMU
    // after must all agree.
    const [image] = await buildCorpus(join(dir, 'fresh'), { filter: (name) => name === 'v3-c64k-rc2' });
    if (!image) throw new Error('v3-c64k-rc2 was not built');
    const before = await qemuMap(['--output=json', ...image.openArgs], image.dir);
    const ours = await qcow2(['map', '--output=json', image.image], { cwd: image.dir });
    const after = await qemuMap(['--output=json', ...image.openArgs], image.dir);
    expect(after.stdout).toBe(before.stdout);
    expectSameJson(ours, before);
  });

  it('either side of the metadata-preallocation detection threshold', async () => {
    // 4 MiB, 64 KiB clusters: 69 clusters in use. With 58 clusters written the file system holds
    // ~62 real clusters (threshold max(62 * 10/9, 64) = 68: detected); with 60, ~64 (threshold 71: not).
    for (const written of [58, 60]) {
      const name = `threshold-${written}.qcow2`;
      await img('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', name, String(4 * MiB));
      await io(name, 'qcow2', `write -P 7 0 ${written * 65536}`);
      await same([name], ['-f', 'qcow2', name]);
    }
  });

  it('external data files: data_file_raw, and a zero cluster at host offset 0', async () => {
    await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=dfr.raw,data_file_raw=on', 'dfr.qcow2', String(4 * MiB));
    await io('dfr.qcow2', 'qcow2', 'write -P 1 0 5000', 'write -z 65536 65536', `write -P 2 ${2 * MiB} 4096`);
    await same(['dfr.qcow2'], ['-f', 'qcow2', 'dfr.qcow2']);
    await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=df0.raw', 'df0.qcow2', String(MiB));
    await io('df0.qcow2', 'qcow2', 'write -P 1 0 65536', 'write -P 2 65536 65536', 'write -z 0 131072');
    const entries = await same(['df0.qcow2'], ['-f', 'qcow2', 'df0.qcow2']);
    expect(entries[0]).toEqual({ start: 0, length: 65536, depth: 0, present: true, zero: true, data: false });
  });

  it('-f raw on a sparse file and on a qcow2 file', async () => {
    await sparse('plain.raw', 3 * MiB + 7, [
      [4096, 100, 1],
      [2 * MiB, 70_000, 2],
    ]);
    await same(['-f', 'raw', 'plain.raw']);
    await same(['-f', 'raw', 'prealloc-extl2.qcow2']);
  });

  it('an empty disk', async () => {
    await img('create', '-q', '-f', 'qcow2', 'empty.qcow2', '0');
    await same(['empty.qcow2'], ['-f', 'qcow2', 'empty.qcow2']);
  });

  it('--start-offset and --max-length', async () => {
    const image = await getCorpusImage('v3-backing-qcow2');
    for (const range of [
      ['--start-offset=1000', '--max-length=100000'],
      ['--start-offset=4259841', '--max-length=1048576'],
      ['--start-offset=65536'],
      ['--max-length=4194305'],
    ]) {
      const theirs = await qemuMap(['--output=json', ...range, ...image.openArgs], image.dir);
      const ours = await qcow2(['map', '--output=json', ...range, image.image], { cwd: image.dir });
      expectSameJson(ours, theirs);
    }
  });
});
