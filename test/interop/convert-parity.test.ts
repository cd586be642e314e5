/**
 * QEMU -> us, through the CLI: `qcow2 convert -O raw` of every corpus image is byte-identical to
 * `qemu-img convert -O raw` (the LUKS image with its secret). For the 1 TiB sparse
 * image the files are compared on the ranges QEMU's map reports as data, plus their lengths.
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECIPES } from '../../src/verification/corpus/recipes.js';
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
  for (const recipe of RECIPES) {
    it(recipe.name, async () => {
      const image = await getCorpusImage(recipe.name);
      const theirs = join(work, `${recipe.name}.qemu.raw`);
      const ours = join(work, `${recipe.name}.ours.raw`);
      await execa('qemu-img', ['convert', '-O', 'raw', ...image.openArgs, theirs], { cwd: image.dir });
      // The LUKS image opens with its secret, as qemu-img's (--object, --image-opts).
      const operand = recipe.features.includes('encryption=luks') ? image.openArgs : [image.image];
      const r = await qcow2(['convert', '-O', 'raw', ...operand, ours], { cwd: image.dir });
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

/** Text-like bytes (compress 3-4x), random bytes (do not compress) and zeros, by 48 KiB runs. */
function mixedRaw(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const words = ['cluster ', 'refcount ', 'table ', 'the ', 'guest ', 'host ', 'of ', 'and ', 'image '];
  for (let at = 0; at < size; at += 49152) {
    const kind = next() % 3;
    const end = Math.min(size, at + 49152);
    for (let i = at; i < end; ) {
      if (kind === 0) for (const ch of words[next() % words.length]!) out[i < end ? i++ : i] = ch.charCodeAt(0);
      else if (kind === 1) out[i++] = next() >>> 24;
      else i = end;
    }
  }
  return out;
}

describe('convert -c packs compressed clusters as qemu-img does', () => {
  for (const [type, clusterSize] of [['zlib', 65536], ['zstd', 65536], ['zlib', 4096], ['zstd', 16384]] as const) {
    it(`${type}, ${clusterSize / 1024} KiB clusters: an image about the size of qemu-img's, clean, same contents`, async () => {
      const raw = join(work, `packed-${type}-${clusterSize}.raw`);
      await writeFile(raw, mixedRaw(6 * 1024 * 1024 + 12345, clusterSize + type.length));
      const opts = ['-o', `cluster_size=${clusterSize},compression_type=${type}`];
      const ours = join(work, `packed-${type}-${clusterSize}.ours.qcow2`);
      const theirs = join(work, `packed-${type}-${clusterSize}.qemu.qcow2`);
      const r = await qcow2(['convert', '-c', '-f', 'raw', '-O', 'qcow2', ...opts, raw, ours]);
      expect(r.stderr).toBe('');
      await execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', ...opts, raw, theirs]);
      const check = await execa('qemu-img', ['check', '--output=json', ours], { reject: false });
      expect(check.exitCode, check.stdout).toBe(0);
      const theirCheck = JSON.parse((await execa('qemu-img', ['check', '--output=json', theirs])).stdout) as Record<string, number>;
      const ourCheck = JSON.parse(check.stdout) as Record<string, number>;
      expect(ourCheck['compressed-clusters']).toBe(theirCheck['compressed-clusters']);
      // Unpacked, every compressed cluster would take a host cluster of its own: about 1.5x here.
      const ourEnd = ourCheck['image-end-offset']!;
      const theirEnd = theirCheck['image-end-offset']!;
      expect(ourEnd / theirEnd).toBeLessThan(1.03);
      expect(ourEnd / theirEnd).toBeGreaterThan(0.9);
      const cmp = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, ours], { reject: false });
      expect(cmp.stdout).toContain('Images are identical.');
      await Promise.all([raw, ours, theirs].map((p) => rm(p, { force: true })));
    });
  }
});
