/**
 * src/convert/: the copy loop the CLI and the library share, and guest bytes as a Readable. The
 * library's convertImage writes the same bytes as `qcow2 convert` with the same choices; the
 * loop's own checks (compressing into a raw target, a smaller target, chunks in flight); progress
 * only moves forward and ends at the size; a stream gives exactly the guest bytes of a range.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { convertImage, copyContents, createOutput } from '../../src/convert/copy.js';
import { guestStream } from '../../src/convert/stream.js';
import { openImage } from '../../src/device/open.js';
import { isQcow2Error } from '../../src/errors.js';

const MiB = 1024 * 1024;
let dir = '';
let input = '';
let guest: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-copy-'));
  input = join(dir, 'in.raw');
  guest = new Uint8Array(6 * MiB + 4096);
  // Data in a few places, an all-zero stretch between, a partial last cluster.
  for (let i = 0; i < MiB + 3000; i++) guest[i] = 1 + (i % 249);
  for (let i = 4 * MiB + 100; i < guest.length; i += 3) guest[i] = 7;
  await writeFile(input, guest);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const quiet = { stdout: () => {}, stderr: () => {}, isTTY: false };

describe('convertImage', () => {
  it('writes the same qcow2 bytes as `qcow2 convert` with the same options (one copy loop)', async () => {
    for (const compress of [false, true]) {
      const cli = join(dir, `cli-${compress}.qcow2`);
      const lib = join(dir, `lib-${compress}.qcow2`);
      const args = ['convert', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', ...(compress ? ['-c'] : []), input, cli];
      expect(await run(args, quiet)).toBe(0);
      await convertImage(input, lib, { inputFormat: 'raw', outputFormat: 'qcow2', create: { clusterSize: 4096 }, compress });
      expect(Buffer.from(await readFile(lib)).equals(await readFile(cli))).toBe(true);
    }
  });

  it('writes a raw output by default, equal to the guest bytes', async () => {
    const out = join(dir, 'out.raw');
    await convertImage(input, out, { cache: 'writethrough', chunksInFlight: 1 });
    expect(Buffer.from(await readFile(out)).equals(Buffer.from(guest))).toBe(true);
  });

  it('reports progress that only moves forward and ends at the virtual size', async () => {
    const seen: [number, number][] = [];
    await convertImage(input, join(dir, 'p.qcow2'), { outputFormat: 'qcow2', onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toEqual([guest.length, guest.length]);
    for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).toBeGreaterThan(seen[i - 1]![0]);
  });

  it('refuses compression into raw, before touching the output', async () => {
    const err = await convertImage(input, join(dir, 'never.raw'), { compress: true }).catch((e: unknown) => e);
    expect(isQcow2Error(err) && err.code).toBe('unsupported');
    await expect(readFile(join(dir, 'never.raw'))).rejects.toThrow(/ENOENT/);
  });
});

describe('copyContents', () => {
  it('issue 13: when several chunks fail, the first failure is thrown and no other escapes as an unhandled rejection', async () => {
    const real = await openImage(input, { readOnly: true });
    const target = await createOutput(join(dir, 'failing.raw'), 'raw', real.virtualSize);
    // Chunk 0 fails late, every later chunk at once: their failures come while chunk 0 is pending.
    const source = new Proxy(real, {
      get(t, key, receiver) {
        if (key !== 'readInto') return Reflect.get(t, key, receiver);
        return async (pos: number) => {
          if (pos === 0) await new Promise((r) => setTimeout(r, 50));
          throw Object.assign(new Error(`read at ${pos} failed`), { pos });
        };
      },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const err = await copyContents(source, target).catch((e: unknown) => e);
      expect((err as Error).message).toBe('read at 0 failed');
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await Promise.all([real.close(), target.close()]);
    }
  });

  it('refuses a raw target for compressed writes, a smaller target, and no chunks in flight', async () => {
    const source = await openImage(input, { readOnly: true });
    const small = await createOutput(join(dir, 'small.raw'), 'raw', MiB);
    const raw = await createOutput(join(dir, 'same.raw'), 'raw', source.virtualSize);
    try {
      await expect(copyContents(source, raw, { compress: true })).rejects.toMatchObject({ code: 'unsupported' });
      await expect(copyContents(source, small)).rejects.toMatchObject({ code: 'usage' });
      await expect(copyContents(source, raw, { chunksInFlight: 0 })).rejects.toMatchObject({ code: 'usage' });
    } finally {
      await Promise.all([source.close(), small.close(), raw.close()]);
    }
  });
});

describe('guestStream', () => {
  async function collect(offset?: number, length?: number, chunkSize?: number): Promise<Buffer> {
    const dev = await openImage(join(dir, 'lib-true.qcow2'), { readOnly: true });
    try {
      const parts: Buffer[] = [];
      for await (const b of guestStream(dev, { ...(offset !== undefined && { offset }), ...(length !== undefined && { length }), ...(chunkSize !== undefined && { chunkSize }) })) {
        expect(Buffer.isBuffer(b)).toBe(true);
        if (chunkSize !== undefined) expect((b as Buffer).length).toBeLessThanOrEqual(chunkSize);
        parts.push(b as Buffer);
      }
      return Buffer.concat(parts);
    } finally {
      await dev.close();
    }
  }

  it('gives the guest bytes of the whole disk, or of a range, in chunks', async () => {
    expect((await collect()).equals(Buffer.from(guest))).toBe(true);
    expect((await collect(MiB - 10, 3 * MiB + 20, 100_000)).equals(Buffer.from(guest.subarray(MiB - 10, 4 * MiB + 10)))).toBe(true);
    expect((await collect(guest.length, 0)).length).toBe(0);
  });

  it('refuses a range outside the disk', async () => {
    const dev = await openImage(input, { readOnly: true });
    try {
      expect(() => guestStream(dev, { offset: 4096, length: guest.length })).toThrow(/not inside the disk/);
      expect(() => guestStream(dev, { chunkSize: 0 })).toThrow(/chunkSize/);
    } finally {
      await dev.close();
    }
  });
});
