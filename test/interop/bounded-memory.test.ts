/**
 * Bounded memory: a 1 TiB image with data in every one of its 2048 L2 tables (128 MiB of L2
 * metadata) serves 40,000 random reads over the whole disk with a resident set no larger than the
 * same reads on a small image whose metadata fits in the cache, plus the cache budget and a small
 * constant (the default budget is QEMU's: what maps the whole disk, at most 32 MiB). Measured in
 * child processes (--expose-gc), so the test runner's memory does not count.
 *
 * The comparison with the small image is what isolates the engine's memory: the runtime's own
 * share (V8 growing its young generation under a high allocation rate, malloc keeping freed
 * pages) comes to tens of MiB on both and says nothing about the image. A cache that kept what it
 * loaded would add the image's 128 MiB of L2 tables.
 */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../support/tools.js';

const TiB = 1024 ** 4;
const L2_SPAN = 512 * 1024 * 1024; // guest bytes one 64 KiB L2 table maps
const MiB = 1024 * 1024;

let dir = '';
let image = '';
let small = '';
beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-memory-'));
  image = join(dir, 'sparse-1t.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image, String(TiB)]);
  const writes: string[] = [];
  for (let t = 0; t < TiB / L2_SPAN; t++) writes.push('-c', `write -q -P ${1 + (t % 250)} ${t * L2_SPAN + (t % 7) * 65536} 4k`);
  await execa('qemu-io', ['-f', 'qcow2', ...writes, image]);
  small = join(dir, 'small.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', small, '1G']);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 1 0 4k', '-c', `write -q -P 2 ${L2_SPAN} 4k`, small]);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Probe {
  rss: number;
  peak: number;
  l2Slices: number;
  l2Capacity: number;
  sliceBytes: number;
  misses: number;
}

async function probe(path: string, count: number, l2Bytes?: number): Promise<Probe> {
  const args = ['--expose-gc', join('test', 'support', 'memory-probe.mjs'), path, String(count), ...(l2Bytes ? [String(l2Bytes)] : [])];
  const r = await execa(process.execPath, args);
  return JSON.parse(r.stdout) as Probe;
}

describe('bounded memory on a 1 TiB image with 2048 L2 tables', () => {
  it('a 1 MiB L2 budget: no more than a small image plus the caches and 8 MiB', async () => {
    const big = await probe(image, 40_000, MiB);
    const base = await probe(small, 40_000, MiB);
    expect(big.l2Slices * big.sliceBytes).toBeLessThanOrEqual(1 * MiB);
    expect(big.misses).toBeGreaterThan(30_000); // the reads really went all over the metadata
    expect(base.misses).toBeLessThanOrEqual(32); // and on the small image, once per slice (2 tables of 16)
    expect(big.peak).toBeLessThan(base.peak + 1.25 * MiB + 8 * MiB);
    expect(big.rss).toBeLessThan(base.rss + 1.25 * MiB + 8 * MiB);
  }, 120_000);

  it('default caches (QEMU\'s: 32 MiB here, a quarter of what maps this disk): far below the 128 MiB of L2 tables', async () => {
    const big = await probe(image, 40_000);
    const base = await probe(small, 40_000);
    expect(big.l2Capacity * big.sliceBytes).toBe(32 * MiB);
    expect(big.l2Slices * big.sliceBytes).toBeLessThanOrEqual(32 * MiB);
    // The small image (1 GiB: 2 tables of 16 slices) gets a 2-table cache and loads each slice once.
    expect(base.l2Capacity * base.sliceBytes).toBe(2 * 65536);
    expect(base.misses).toBeLessThanOrEqual(32);
    // The cache, plus what V8's heap grows by under the higher miss rate (about 10 MB measured).
    expect(big.rss).toBeLessThan(base.rss + 32 * MiB + 24 * MiB);
  }, 120_000);

  it('a smaller budget is honoured too (64 KiB of L2 slices)', async () => {
    const big = await probe(image, 20_000, 64 * 1024);
    const base = await probe(small, 20_000, 64 * 1024);
    expect(big.l2Capacity).toBe(16);
    expect(big.l2Slices).toBeLessThanOrEqual(16);
    expect(big.peak).toBeLessThan(base.peak + 8 * MiB);
  }, 120_000);
});
