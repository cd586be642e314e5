/**
 * Regressions for issue 13: faults found by mutating the metadata of images that qemu-img made and
 * running our commands beside QEMU's. Each image is built with qemu-img/qemu-io, patched at a
 * place our codecs locate, and the judge is what qemu-img/qemu-io do with the same bytes (or the
 * spec, where QEMU cannot be compared). Every failure must be one typed line
 * (`qcow2 COMMAND: CODE: …`), never a Node stack trace, a raw Node error code or a Node warning.
 */
import { execa } from 'execa';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/device/open.js';
import { isQcow2Error } from '../../src/errors.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';
import { QCOW2_BIN, qcow2 } from '../support/cli.js';
import { qemuImg, qemuIo, readU64, tables, writeU64 } from '../support/corrupt-image.js';
import { requireTool } from '../support/tools.js';

const COPIED = 1n << 63n;
const MiB = 1024 * 1024;
let dir = '';

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-issue13-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Our command's failure: exit 1 and exactly one line on stderr, `qcow2 CMD: CODE: …`. */
function expectOneTypedLine(r: { exitCode?: number; stderr: string }, command: string, code: string): string {
  expect(r.exitCode, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^qcow2 ${command}: ${code}: `));
  expect(r.stderr).not.toMatch(/ERR_[A-Z_]+|    at |Warning|node:internal/);
  return lines[0]!;
}

/** 8 MiB of compressible text (so that every cluster is stored compressed). */
async function textRaw(name: string): Promise<string> {
  const path = join(dir, `${name}.raw`);
  const line = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
  const data = Buffer.alloc(8 * MiB);
  for (let at = 0; at < data.length; at += line.length) line.copy(data, at);
  await writeFile(path, data);
  return path;
}

/** Compressed descriptor fields of the L2 entry at `at`, for a cluster size of 2^clusterBits. */
function descriptorBits(clusterBits: number) {
  const x = 62 - (clusterBits - 8);
  return { offsetMask: (1n << BigInt(x)) - 1n, sectorsShift: BigInt(x), sectorsMask: ((1n << BigInt(62 - x)) - 1n) << BigInt(x) };
}

describe('issue 13, class 1: a damaged compressed cluster fails convert with one typed line', () => {
  it('a short sector count on a 2 MiB-cluster deflate image: convert -O raw fails as qemu-img does, no stack trace in any run', async () => {
    const raw = await textRaw('text-2m');
    const path = join(dir, 'short-2m.qcow2');
    await execa('qemu-img', ['convert', '-q', '-c', '-O', 'qcow2', '-o', 'cluster_size=2M', raw, path]);
    const t = await tables(path);
    const bits = descriptorBits(21);
    // Every cluster's descriptor says its data fits in one sector: each chunk of the copy fails.
    for (let i = 0; i < 4; i++) {
      const at = t.l2EntryAt(0, i);
      const e = await readU64(path, at);
      expect(e >> 62n & 1n).toBe(1n);
      await writeU64(path, at, e & ~bits.sectorsMask);
    }
    const q = await execa('qemu-img', ['convert', '-O', 'raw', path, join(dir, 'q.raw')], { reject: false });
    expect(q.exitCode).toBe(1);
    expect(q.stderr).toMatch(/error while reading/);
    for (let run = 0; run < 4; run++) {
      const r = await qcow2(['convert', '-O', 'raw', path, join(dir, 'o.raw')]);
      expect(expectOneTypedLine(r, 'convert', 'corrupt')).toMatch(/compressed cluster at 0x[0-9a-f]+: /);
    }
    const io = await qcow2(['io', '-r', '-c', 'read 0 8M', path]);
    expectOneTypedLine(io, 'io', 'corrupt');
  });

  it('an offset moved by one byte on a 4 KiB-cluster zstd image: convert -O raw fails as qemu-img does, no stack trace in any run', async () => {
    const raw = await textRaw('text-4k');
    const path = join(dir, 'moved-4k.qcow2');
    await execa('qemu-img', ['convert', '-q', '-c', '-O', 'qcow2', '-o', 'cluster_size=4k,compression_type=zstd', raw, path]);
    const t = await tables(path);
    // One damaged cluster in each 1 MiB chunk of the copy (256 clusters of 4 KiB each).
    for (let chunk = 0; chunk < 8; chunk++) {
      const guestCluster = chunk * 256 + 3;
      const at = t.l2EntryAt(Math.floor(guestCluster / 512), guestCluster % 512);
      const e = await readU64(path, at);
      expect(e >> 62n & 1n).toBe(1n);
      await writeU64(path, at, e + 1n);
    }
    const q = await execa('qemu-img', ['convert', '-O', 'raw', path, join(dir, 'q.raw')], { reject: false });
    expect(q.exitCode).toBe(1);
    for (let run = 0; run < 4; run++) {
      const r = await qcow2(['convert', '-O', 'raw', path, join(dir, 'o.raw')]);
      expect(expectOneTypedLine(r, 'convert', 'corrupt')).toMatch(/compressed cluster at 0x[0-9a-f]+: /);
    }
  });
});

describe('issue 13, class 2: host offsets between 2^53 and 2^56 are corrupt entries, not Node range errors', () => {
  /** A 1 MiB image with guest cluster 0 written; the entry at `where(t)` then set to COPIED | 2^54. */
  async function farImage(name: string, where: (t: Awaited<ReturnType<typeof tables>>) => number) {
    const path = join(dir, `${name}.qcow2`);
    await qemuImg(['create', '-q', '-f', 'qcow2', path, '1M']);
    await qemuIo(path, 'write -P 0x11 0 64k');
    const at = where(await tables(path));
    await writeU64(path, at, COPIED | (1n << 54n));
    return { path, at };
  }

  for (const [name, where] of [
    ['an L1 entry', (t: Awaited<ReturnType<typeof tables>>) => t.l1Offset],
    ['an L2 entry', (t: Awaited<ReturnType<typeof tables>>) => t.l2EntryAt(0, 0)],
  ] as const) {
    it(`${name} pointing at 2^54: io, convert and map fail as corrupt naming the entry`, async () => {
      const { path, at } = await farImage(name.replace(/ /g, '-'), where);
      for (const args of [['io', '-r', '-c', 'read 0 4k'], ['convert', '-O', 'raw'], ['map']]) {
        const full = args[0] === 'convert' ? [...args, path, join(dir, 'far.raw')] : [...args, path];
        const line = expectOneTypedLine(await qcow2(full), args[0]!, 'corrupt');
        expect(line).toContain(`at 0x${at.toString(16)}: `);
        expect(line).toMatch(/beyond 2\^53 - 1/);
      }
    });
  }
});

describe('issue 13, class 3: an image naming itself as its backing file leaves no file handle open', () => {
  async function openFds(): Promise<number> {
    return (await readdir('/proc/self/fd')).length;
  }

  /** `name` with itself as backing file (qemu-img rebase -u), optionally with an external data file. */
  async function selfBacked(name: string, dataFile: boolean): Promise<string> {
    const path = join(dir, `${name}.qcow2`);
    await qemuImg(['create', '-q', '-f', 'qcow2', ...(dataFile ? ['-o', `data_file=${join(dir, `${name}.data`)}`] : []), path, '1M']);
    const r = await qemuImg(['rebase', '-u', '-b', path, '-F', 'qcow2', path]);
    expect(r.exitCode, r.stderr).toBe(0);
    return path;
  }

  for (const dataFile of [false, true]) {
    it(`${dataFile ? 'with an external data file: ' : ''}every open fails with a typed error and every file it opened is closed`, async () => {
      const path = await selfBacked(`self${dataFile ? '-data' : ''}`, dataFile);
      const before = await openFds();
      for (const readOnly of [true, false]) {
        for (const open of [openImage, openReference, openOptimized]) {
          const err = await open(path, { readOnly }).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isQcow2Error(err), String(err)).toBe(true);
          expect((err as Error).message).toMatch(/backing chain deeper than 32/);
        }
      }
      expect(await openFds()).toBe(before);
      for (const args of [['io', '-r', '-c', 'read 0 4k', path], ['map', path], ['convert', '-O', 'raw', path, join(dir, 'self.raw')]]) {
        const r = await execa(process.execPath, ['--expose-gc', '--gc-interval=500', QCOW2_BIN, ...args], { reject: false });
        expectOneTypedLine(r, args[0]!, 'unsupported');
      }
    });
  }
});

describe('issue 13, class 6: a virtual size that is not a multiple of 512 is rounded down, as QEMU does', () => {
  it('info, map and io take 1 MiB + 1000 bytes as 1 MiB + 512, as qemu-img info, qemu-img map and qemu-io do', async () => {
    const path = join(dir, 'odd-size.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', path, '1M']);
    await writeU64(path, 24, BigInt(MiB + 1000)); // header field `size`
    const qInfo = JSON.parse((await qemuImg(['info', '--output=json', path])).stdout) as { 'virtual-size': number };
    expect(qInfo['virtual-size']).toBe(MiB + 512);
    const ours = await qcow2(['info', '--output=json', path]);
    expect(JSON.parse(ours.stdout)['virtual-size']).toBe(qInfo['virtual-size']);
    const qMap = await qemuImg(['map', '--output=json', path]);
    expect((await qcow2(['map', '--output=json', path])).stdout).toBe(qMap.stdout);
    // A read of the last 1000 bytes the header names: qemu-io fails it, so do we; the rounded size reads.
    for (const [cmd, ok] of [['read 1M 1000', false], ['read 1M 512', true]] as const) {
      const q = await execa('qemu-io', ['-r', '-f', 'qcow2', '-c', cmd, path], { reject: false });
      const r = await qcow2(['io', '-r', '-c', cmd, path]);
      expect(q.stdout.includes('read failed')).toBe(!ok);
      expect(r.stdout.includes('read failed'), r.stdout + r.stderr).toBe(!ok);
    }
  });
});
