/**
 * The native lseek(SEEK_DATA/SEEK_HOLE) addon behind `qcow2 map`'s hole oracle, on a real sparse file.
 * Under CI the addon must be built (`npm ci` runs native/build.mjs); elsewhere a missing addon falls
 * back to "all data", which these tests then check instead.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holesSupported, loadSeekAddon, openFileHoles } from '../../src/map/holes.js';

const MiB = 1024 * 1024;

describe('hole oracle over a real file', () => {
  let dir = '';
  let path = '';
  // 1 MiB hole, 4 KiB of data, then a hole up to the size (1 MiB + 4 KiB + 1 MiB + 100).
  const size = 2 * MiB + 4096 + 100;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qcow2-holes-'));
    path = join(dir, 'sparse.raw');
    const fh = await open(path, 'w');
    await fh.write(new Uint8Array(4096).fill(7), 0, 4096, MiB);
    await fh.truncate(size);
    await fh.close();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is built under CI', () => {
    if (process.env['CI']) {
      expect(loadSeekAddon()).not.toBeNull();
      expect(holesSupported()).toBe(true);
    }
  });

  it('finds the data and the holes (or, without the addon, calls everything data)', () => {
    const holes = openFileHoles(path);
    try {
      expect(holes.size).toBe(size);
      if (loadSeekAddon()) {
        expect(holes.seekData(0)).toBe(MiB);
        expect(holes.seekHole(MiB)).toBe(MiB + 4096);
        expect(holes.seekHole(0)).toBe(0);
        // A trailing hole: ENXIO, and at/after the end of the file too.
        expect(holes.seekData(MiB + 4096)).toBeNull();
        expect(holes.seekData(size)).toBeNull();
        expect(holes.seekHole(size + 1)).toBeNull();
      } else {
        expect(holes.seekData(0)).toBe(0);
        expect(holes.seekHole(0)).toBe(size);
        expect(holes.seekData(size)).toBeNull();
      }
    } finally {
      holes.close();
    }
  });

  it('reports other lseek failures as errors with a code', () => {
    const addon = loadSeekAddon();
    if (!addon) return;
    expect(() => addon.seekData(-1, 0)).toThrow();
    expect(() => addon.seekData(987_654, 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
