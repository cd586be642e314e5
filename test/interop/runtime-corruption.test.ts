/**
 * Runtime corruption detection in the optimized engine: a request that meets an impossible L2
 * entry (pointing into metadata, past the end of the file, unaligned) fails with a typed 'corrupt'
 * error naming the offset; the image is marked corrupt on disk (qemu-img info says so), nothing the
 * bad entry points at is overwritten, and every later write is refused while reads go on.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQcow2Error } from '../../src/errors.js';
import { openOptimized } from '../../src/optimized/open.js';
import { qemuImg, qemuIo, tables, writeU64 } from '../support/corrupt-image.js';
import { requireTool } from '../support/tools.js';

const COPIED = 1n << 63n;
const C = 65536;
let dir: string;

beforeAll(async () => {
  await requireTool('qemu-img');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-runtime-corrupt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 1 MiB image with guest clusters 0, 1 and 8 written; L2 entry 0 then replaced by `entry(t)`. */
async function imageWith(name: string, entry: (t: Awaited<ReturnType<typeof tables>>) => bigint) {
  const path = join(dir, `${name}.qcow2`);
  await qemuImg(['create', '-q', '-f', 'qcow2', path, '1M']);
  await qemuIo(path, 'write -P 0x11 0 128k', 'write -P 0x22 512k 64k');
  const t = await tables(path);
  const entryAt = t.l2EntryAt(0, 0);
  await writeU64(path, entryAt, entry(t));
  return { path, t, entryAt };
}

async function expectCorrupt(action: Promise<unknown>, offset: number, message: RegExp): Promise<void> {
  const err = await action.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isQcow2Error(err), `expected a Qcow2Error, got ${String(err)}`).toBe(true);
  expect(err).toMatchObject({ code: 'corrupt', offset });
  expect((err as Error).message).toMatch(message);
}

async function expectMarkedAndRefusing(path: string): Promise<void> {
  const bytes = await readFile(path);
  expect(bytes[79]! & 2).toBe(2); // incompatible bit 1: corrupt
  const info = JSON.parse((await qemuImg(['info', '--output=json', path])).stdout) as { 'format-specific': { data: { corrupt: boolean } } };
  expect(info['format-specific'].data.corrupt).toBe(true);
  await expect(openOptimized(path)).rejects.toMatchObject({ code: 'corrupt' });
  const ro = await openOptimized(path, { readOnly: true });
  expect((await ro.read(512 * 1024, 4))[0]).toBe(0x22);
  await ro.close();
}

const cases = [
  { name: 'into the refcount table', entry: (t: Awaited<ReturnType<typeof tables>>) => COPIED | BigInt(t.refcountTableOffset), what: /would overwrite the refcount table/ },
  { name: 'into an L2 table', entry: (t: Awaited<ReturnType<typeof tables>>) => COPIED | BigInt(t.l2[0]!), what: /would overwrite an L2 table/ },
  { name: 'into a refcount block', entry: (t: Awaited<ReturnType<typeof tables>>) => COPIED | BigInt(t.refblock0), what: /would overwrite a refcount block/ },
];

describe('the optimized engine marks an image corrupt when a request meets an impossible entry', () => {
  for (const c of cases) {
    it(`a write through an L2 entry ${c.name} is refused before it overwrites anything`, async () => {
      const { path } = await imageWith(c.name.replace(/ /g, '-'), c.entry);
      const before = await readFile(path);
      const target = Number(c.entry(await tables(path)) & ~COPIED);
      const dev = await openOptimized(path);
      await expectCorrupt(dev.write(100, new Uint8Array(512).fill(0xee)), target, c.what);
      // Later writes are refused, even to healthy clusters; reads go on.
      await expect(dev.write(512 * 1024, new Uint8Array(512))).rejects.toMatchObject({ code: 'unsupported', message: expect.stringMatching(/marked corrupt/) });
      expect((await dev.read(512 * 1024, 4))[0]).toBe(0x22);
      await dev.close();
      const after = await readFile(path);
      // Only the incompatible features field changed (bytes 72..79).
      expect(Buffer.compare(after.subarray(0, 72), before.subarray(0, 72))).toBe(0);
      expect(Buffer.compare(after.subarray(80), before.subarray(80))).toBe(0);
      await expectMarkedAndRefusing(path);
    });
  }

  it('a read through an unaligned L2 entry fails with the entry offset, and marks the image', async () => {
    const { path, entryAt } = await imageWith('unaligned', (t) => COPIED | BigInt(t.l2[0]! + 2 * C + 512));
    const dev = await openOptimized(path);
    await expectCorrupt(dev.read(0, 512), entryAt, /not cluster aligned/);
    await expect(dev.write(512 * 1024, new Uint8Array(512))).rejects.toMatchObject({ code: 'unsupported' });
    await dev.close();
    await expectMarkedAndRefusing(path);
  });

  it('a read through an L2 entry past the end of the file fails with the entry offset, and marks the image', async () => {
    const { path, entryAt } = await imageWith('past-end', (t) => COPIED | BigInt(Math.ceil(t.fileSize / C) * C + 64 * C));
    const dev = await openOptimized(path);
    await expectCorrupt(dev.read(0, 512), entryAt, /past the end of the file/);
    await dev.close();
    await expectMarkedAndRefusing(path);
  });

  it('opened read-only, the request fails the same way and the file is not touched', async () => {
    const { path, entryAt } = await imageWith('read-only', (t) => COPIED | BigInt(t.l2[0]! + 512));
    const before = await readFile(path);
    const dev = await openOptimized(path, { readOnly: true });
    await expectCorrupt(dev.read(0, 512), entryAt, /not cluster aligned/);
    await dev.close();
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
  });
});
