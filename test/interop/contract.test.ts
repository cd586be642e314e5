/**
 * The serving contract (src/engine/types.ts) as both engines and the raw adapter keep it: FUA
 * writes are flushed before they return, `fast` zero writes either change only metadata or fail
 * before changing anything, block status names the layer that answers (allocation depth), and the
 * capabilities a device states match what it does. Expected values are worked out by hand from
 * the images' layouts.
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/device/open.js';
import type { BlockDevice } from '../../src/engine/types.js';
import { isQcow2Error } from '../../src/errors.js';
import type { BlockFile } from '../../src/io/block-file.js';
import { type FileOp, RecordingFile } from '../../src/io/recording-file.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';
import { qemuImg, requireTool } from '../support/tools.js';

const K = 1024;
const M = 1024 * K;
let dir: string;

beforeAll(async () => {
  await requireTool('qemu-img');
  dir = await mkdtemp(join(tmpdir(), 'contract-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function image(name: string, opts: string, size = '4M', backing?: string): Promise<string> {
  const path = join(dir, name);
  const args = ['create', '-q', '-f', 'qcow2', '-o', opts, ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), path, size];
  await qemuImg(args);
  return path;
}

type Opener = (path: string, wrap?: (f: BlockFile) => BlockFile) => Promise<BlockDevice>;
const engines: Record<string, Opener> = {
  reference: (p, wrap) => openReference(p, wrap ? { wrapFile: wrap } : {}),
  optimized: (p, wrap) => openOptimized(p, { compressionThreads: 0, ...(wrap ? { wrapFile: wrap } : {}) }),
};

/** Opens with a recording layer under the engine; returns the device and its log. */
async function recorded(open: Opener, path: string): Promise<{ dev: BlockDevice; log: FileOp[] }> {
  const log: FileOp[] = [];
  const dev = await open(path, (f) => new RecordingFile(f, log));
  return { dev, log };
}

const dataWrites = (log: FileOp[], from: number) => log.slice(from).filter((op) => op.kind === 'write' && op.tag === 'data');

for (const [name, open] of Object.entries(engines)) {
  describe(`${name} engine`, () => {
    it('a FUA write has been flushed when it returns', async () => {
      const path = await image(`fua-${name}.qcow2`, 'compat=1.1,cluster_size=65536');
      const { dev, log } = await recorded(open, path);
      await dev.write(0, new Uint8Array(4096).fill(7)); // first write: allocation, autoclear
      await dev.flush();
      const mark = log.length;
      await dev.write(8192, new Uint8Array(4096).fill(9), { fua: true });
      const after = log.slice(mark);
      const lastWrite = after.map((op) => op.kind).lastIndexOf('write');
      expect(lastWrite).toBeGreaterThanOrEqual(0);
      expect(after.slice(lastWrite).some((op) => op.kind === 'flush')).toBe(true);
      await dev.close();
    });

    it('a fast zero write on aligned clusters changes metadata only', async () => {
      const path = await image(`fast-${name}.qcow2`, 'compat=1.1,cluster_size=65536');
      const { dev, log } = await recorded(open, path);
      await dev.write(0, new Uint8Array(256 * K).fill(1));
      const mark = log.length;
      await dev.writeZeroes(64 * K, 128 * K, { fast: true });
      expect(dataWrites(log, mark)).toEqual([]);
      const back = await dev.read(0, 256 * K);
      expect(back.subarray(0, 64 * K).every((b) => b === 1)).toBe(true);
      expect(back.subarray(64 * K, 192 * K).every((b) => b === 0)).toBe(true);
      expect(back.subarray(192 * K).every((b) => b === 1)).toBe(true);
      await dev.close();
    });

    it('a fast zero write that would write zeros fails before changing anything', async () => {
      for (const [label, opts, offset, length] of [
        ['v2: no zero flag', 'compat=0.10,cluster_size=65536', 0, 64 * K],
        ['v3, partial cluster', 'compat=1.1,cluster_size=65536', 4 * K, 64 * K],
        ['extended L2, partial subcluster', 'compat=1.1,cluster_size=65536,extended_l2=on', 1 * K, 2 * K],
      ] as const) {
        const path = await image(`nofast-${name}-${label.replace(/\W+/g, '-')}.qcow2`, opts);
        const { dev, log } = await recorded(open, path);
        await dev.write(0, new Uint8Array(128 * K).fill(3));
        await dev.flush();
        const mark = log.length;
        const err = await dev.writeZeroes(offset, length, { fast: true }).then(() => undefined, (e: unknown) => e);
        expect(isQcow2Error(err) && err.code, label).toBe('unsupported');
        expect(log.slice(mark).filter((op) => op.kind === 'write'), label).toEqual([]);
        expect((await dev.read(0, 128 * K)).every((b) => b === 3), label).toBe(true);
        expect(dev.capabilities.fastZero, label).toBe(!label.startsWith('v2'));
        await dev.close();
      }
    });

    it('block status gives the layer that answers (allocation depth)', async () => {
      // base: data in cluster 0; overlay: data in cluster 1, zero flag on cluster 2; the overlay
      // is 4 clusters larger than the base, so clusters past the base's end answer from no layer.
      const base = await image(`base-${name}.qcow2`, 'compat=1.1,cluster_size=65536', '256K');
      const b = await open(base);
      await b.write(0, new Uint8Array(64 * K).fill(5));
      await b.close();
      const top = await image(`top-${name}.qcow2`, 'compat=1.1,cluster_size=65536', '512K', base);
      const dev = await open(top);
      await dev.write(64 * K, new Uint8Array(64 * K).fill(6));
      await dev.writeZeroes(128 * K, 64 * K);
      expect(await dev.blockStatus(0, 512 * K)).toEqual([
        { start: 0, length: 64 * K, zero: false, data: true, depth: 2 },
        { start: 64 * K, length: 64 * K, zero: false, data: true, depth: 1 },
        { start: 128 * K, length: 64 * K, zero: true, data: false, depth: 1 },
        // Cluster 3 is unallocated in both layers, and the base ends at 256 KiB: no layer answers.
        { start: 192 * K, length: 320 * K, zero: true, data: false, depth: 0 },
      ]);
      await dev.close();
    });

    it('capabilities follow the image: no snapshots or compressed writes with a data file', async () => {
      const path = await image(`df-${name}.qcow2`, `compat=1.1,data_file=${join(dir, `df-${name}.raw`)}`);
      const dev = await open(path);
      expect(dev.capabilities).toEqual({ discard: true, zeroUnmap: true, fastZero: true, compressedWrites: false, snapshots: false });
      await dev.close();
    });
  });
}

describe('raw adapter', () => {
  it('states and uses the file system capabilities: discard punches a hole', async () => {
    const path = join(dir, 'raw.img');
    await writeFile(path, new Uint8Array(4 * M).fill(1));
    const dev = await openImage(path, { format: 'raw' });
    expect(dev.format).toBe('raw');
    expect(dev.backing).toBeUndefined();
    expect(dev.capabilities.discard).toBe(true); // /tmp punches holes (ext4, tmpfs, xfs)
    await dev.discard(M, M);
    expect((await dev.read(M, M)).every((b) => b === 0)).toBe(true);
    expect(await dev.blockStatus(0, 4 * M)).toEqual([{ start: 0, length: 4 * M, zero: false, data: true, depth: 1 }]);
    await dev.close();
  });
});

describe('discard on an image with a raw external data file', () => {
  for (const [name, open] of Object.entries(engines)) {
    it(`${name}: punches a hole in the data file (it used to write zeros there)`, async () => {
      const data = join(dir, `raw-data-${name}.img`);
      const path = await image(`raw-data-${name}.qcow2`, `compat=1.1,cluster_size=65536,data_file=${data},data_file_raw=on`, '8M');
      const dev = await open(path);
      await dev.write(0, new Uint8Array(4 * M).fill(0x5a));
      await dev.flush();
      const before = (await stat(data)).blocks * 512;
      await dev.discard(0, 4 * M);
      await dev.flush();
      const after = (await stat(data)).blocks * 512;
      expect(before).toBeGreaterThanOrEqual(4 * M);
      expect(after).toBeLessThanOrEqual(before - 4 * M);
      expect((await dev.read(0, 4 * M)).every((b) => b === 0)).toBe(true);
      await dev.close();
      // QEMU reads the same zeros through the image and through the raw data file.
      const raw = await execa('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 4M', data]);
      expect(raw.stdout).toContain('read 4194304/4194304 bytes');
    });
  }
});
