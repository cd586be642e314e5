/**
 * The optimized engine over an in-memory file that yields between operations: two concurrent
 * writes allocating in the same L2 table both survive; a read over contiguous clusters is one
 * BlockFile read.
 */
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readMetadata } from '../../src/image/metadata.js';
import type { WriteTag } from '../../src/io/block-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { openOnFiles } from '../../src/optimized/open.js';

/** Yields to the event loop around every operation, and counts them. */
class SlowFile extends MemoryFile {
  reads: { offset: number; length: number }[] = [];
  writes: { offset: number; length: number; tag: WriteTag | undefined }[] = [];
  override async readInto(offset: number, target: Uint8Array): Promise<number> {
    this.reads.push({ offset, length: target.byteLength });
    await new Promise((r) => setTimeout(r, 1));
    return super.readInto(offset, target);
  }
  override async write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void> {
    this.writes.push({ offset, length: data.byteLength, tag });
    await new Promise((r) => setTimeout(r, 1));
    return super.write(offset, data);
  }
}

async function blankImage(size: string, clusterSize = 65536): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-opt-unit-'));
  try {
    const path = join(dir, 'a.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${clusterSize}`, path, size]);
    return new Uint8Array(await readFile(path));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function open(bytes: Uint8Array) {
  const file = new SlowFile(bytes);
  const dev = await openOnFiles(file, undefined, undefined, await readMetadata(file), { l2CacheBytes: 2 * 65536, refcountCacheBytes: 2 * 65536 });
  return { file, dev };
}

describe('optimized engine concurrency', () => {
  it('two concurrent writes allocating in the same L2 table both survive (and after reopen)', async () => {
    const { file, dev } = await open(await blankImage('64M'));
    const a = new Uint8Array(65536).fill(0xaa);
    const b = new Uint8Array(65536).fill(0xbb);
    const c = new Uint8Array(4096).fill(0xcc);
    await Promise.all([dev.write(0, a), dev.write(5 * 65536, b), dev.write(9 * 65536 + 512, c)]);
    expect((await dev.read(0, 65536)).every((x) => x === 0xaa)).toBe(true);
    expect((await dev.read(5 * 65536, 65536)).every((x) => x === 0xbb)).toBe(true);
    expect((await dev.read(9 * 65536 + 512, 4096)).every((x) => x === 0xcc)).toBe(true);
    await dev.flush();
    const again = await open(file.snapshot());
    expect((await again.dev.read(0, 65536)).every((x) => x === 0xaa)).toBe(true);
    expect((await again.dev.read(5 * 65536, 65536)).every((x) => x === 0xbb)).toBe(true);
    expect((await again.dev.read(9 * 65536 + 512, 4096)).every((x) => x === 0xcc)).toBe(true);
  });

  it('many concurrent allocating writes in one L2 table all survive a reopen', async () => {
    const { file, dev } = await open(await blankImage('64M'));
    await Promise.all(Array.from({ length: 16 }, (_, k) => dev.write(k * 65536 + 100, new Uint8Array(1000).fill(k + 1))));
    await dev.flush();
    const again = await open(file.snapshot());
    for (let k = 0; k < 16; k++) expect((await again.dev.read(k * 65536 + 100, 1000)).every((x) => x === k + 1)).toBe(true);
  });

  it('a multi-cluster read over contiguous host clusters is one BlockFile read', async () => {
    const { dev, file } = await open(await blankImage('64M'));
    const data = new Uint8Array(8 * 65536);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await dev.write(0, data);
    const writesOfData = file.writes.filter((w) => w.tag === 'data');
    expect(writesOfData.length).toBe(1); // the allocating write was coalesced too
    await dev.read(0, 65536); // warm the L2 cache
    file.reads = [];
    const got = await dev.read(0, 8 * 65536);
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
    expect(file.reads).toEqual([{ offset: expect.any(Number), length: 8 * 65536 }]);
  });

  it('a 1 TiB sparse image opens and reads within the caches', async () => {
    const { dev, file } = await open(await blankImage('1T'));
    await dev.write(512 * 1024 ** 3, new Uint8Array(4096).fill(9));
    file.reads = [];
    const got = await dev.read(512 * 1024 ** 3, 8192);
    expect(got.subarray(0, 4096).every((x) => x === 9)).toBe(true);
    expect(got.subarray(4096).every((x) => x === 0)).toBe(true);
    expect(dev.state.l2Cache.size).toBeLessThanOrEqual(dev.state.l2Cache.capacity);
  });
});
