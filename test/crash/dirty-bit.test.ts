/**
 * The dirty bit (incompatible bit 0, byte 79 bit 0) as the engines keep it: set during snapshot
 * updates and, with lazy refcounts, from the first allocation until close; never left behind by a
 * request refused before it changed anything.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lane, lanesFor } from '../../src/verification/engines.js';
import { qemuImg } from '../support/corrupt-image.js';
import { requireTool } from '../support/tools.js';

let dir: string;
beforeAll(async () => {
  await requireTool('qemu-img');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-dirty-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const dirtyBit = async (path: string) => (await readFile(path))[79]! & 1;

describe('the dirty bit', () => {
  for (const { name: engine, open } of lanesFor('dirty-bit')) {
    it(`${engine}: deleting a snapshot that does not exist leaves the image clean`, async () => {
      const path = join(dir, `${engine}-missing.qcow2`);
      await qemuImg(['create', '-q', '-f', 'qcow2', path, '1M']);
      const dev = await open(path, { compressionThreads: 0 });
      await expect(dev.deleteSnapshot('missing')).rejects.toMatchObject({ code: 'usage' });
      expect(await dirtyBit(path)).toBe(0);
      await dev.close();
      expect(await dirtyBit(path)).toBe(0);
      expect((await qemuImg(['check', path])).exitCode).toBe(0);
    });
  }

  it('optimized, lazy refcounts: set from the first allocation until close', async () => {
    const path = join(dir, 'lazy.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path, '1M']);
    const dev = await lane('optimized').open(path, { compressionThreads: 0 });
    expect(await dirtyBit(path)).toBe(0);
    await dev.write(0, new Uint8Array(4096).fill(1));
    await dev.flush();
    expect(await dirtyBit(path)).toBe(1);
    await dev.close();
    expect(await dirtyBit(path)).toBe(0);
    expect((await qemuImg(['check', path])).exitCode).toBe(0);
  });
});
