/**
 * QEMU -> us, through the CLI: `qcow2 convert -O raw` of every corpus image is byte-identical to
 * `qemu-img convert -O raw` (encrypted images aside: we only describe those). For the 1 TiB sparse
 * image the files are compared on the ranges QEMU's map reports as data, plus their lengths.
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECIPES } from '../../src/corpus/recipes.js';
import { RawDevice } from '../../src/engine/raw.js';
import { qcow2 } from '../support/cli.js';
import { firstDifference } from '../support/raw-compare.js';
import { getCorpusImage } from './corpus.js';

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'qcow2-convert-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('qcow2 convert -O raw equals qemu-img convert -O raw', () => {
  for (const recipe of RECIPES.filter((r) => !r.features.includes('encryption=luks'))) {
    it(recipe.name, async () => {
      const image = await getCorpusImage(recipe.name);
      const theirs = join(work, `${recipe.name}.qemu.raw`);
      const ours = join(work, `${recipe.name}.ours.raw`);
      await execa('qemu-img', ['convert', '-O', 'raw', ...image.openArgs, theirs], { cwd: image.dir });
      const r = await qcow2(['convert', '-O', 'raw', image.image, ours], { cwd: image.dir });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect((await stat(ours)).size).toBe((await stat(theirs)).size);
      const device = await RawDevice.open(ours, { readOnly: true });
      try {
        let ranges: { start: number; length: number }[] | undefined;
        if (device.virtualSize > 8 * 1024 ** 3) {
          const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', ...image.openArgs], { cwd: image.dir })).stdout) as {
            start: number;
            length: number;
            data: boolean;
          }[];
          ranges = map.filter((m) => m.data).map((m) => ({ start: m.start, length: m.length }));
        }
        expect(await firstDifference(device, theirs, ranges)).toBe(-1);
      } finally {
        await device.close();
        await rm(ours, { force: true });
        await rm(theirs, { force: true });
      }
    });
  }
});

describe('qcow2 convert -O qcow2 [-c] makes images QEMU finds clean and equal to their source', () => {
  const cases: [string, string[]][] = [
    ['v3-c64k', []],
    ['v3-backing-chain3', ['-o', 'cluster_size=4096']],
    ['v3-c64k-extl2', ['-o', 'extended_l2=on']],
    ['v2-snapshots', ['-o', 'compat=0.10']],
    ['v3-convert-c-zlib', ['-c']],
    ['v3-compressed-zstd', ['-c', '-o', 'compression_type=zstd']],
    ['v3-datafile', ['-c', '-o', 'cluster_size=16384,refcount_bits=4']],
  ];
  for (const [name, opts] of cases) {
    it(`${name} ${opts.join(' ')}`, async () => {
      const image = await getCorpusImage(name);
      const out = join(work, `${name}.converted.qcow2`);
      const r = await qcow2(['convert', '-O', 'qcow2', ...opts, image.image, out], { cwd: image.dir });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const check = await execa('qemu-img', ['check', out], { reject: false });
      expect(check.exitCode, check.stdout).toBe(0);
      if (opts.includes('-c')) expect(check.stdout).toMatch(/[1-9][\d.]*% compressed clusters/);
      const cmp = await execa('qemu-img', ['compare', ...image.openArgs, out], { cwd: image.dir, reject: false });
      expect(cmp.stdout).toContain('Images are identical.');
      await rm(out, { force: true });
    });
  }
});
