/**
 * QEMU -> us, in process: every engine lane of the reads suite (src/verification/engines.ts: the
 * reference and the optimized engine) reads every corpus image exactly as `qemu-img convert -O raw`
 * does (the LUKS image unlocked with its passphrase). The 1 TiB sparse image is compared on the
 * ranges QEMU's own map reports as data, plus the unallocated space around 4 GiB and the last cluster.
 */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECIPES } from '../../src/verification/corpus/recipes.js';
import { lanesFor } from '../../src/verification/engines.js';
import { firstDifference } from '../support/raw-compare.js';
import { getCorpusImage } from './corpus.js';

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'qcow2-engine-read-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

for (const { name: engine, open } of lanesFor('reads')) {
  describe(`the ${engine} engine reads what qemu-img reads`, () => {
    for (const recipe of RECIPES) {
      it(recipe.name, async () => {
        const image = await getCorpusImage(recipe.name);
        const raw = join(work, `${engine}-${recipe.name}.raw`);
        await execa('qemu-img', ['convert', '-O', 'raw', ...image.openArgs, raw], { cwd: image.dir });
        const device = await open(image.image, { readOnly: true, ...(image.secret !== undefined ? { keySecret: Buffer.from(image.secret) } : {}) });
        try {
          let ranges: { start: number; length: number }[] | undefined;
          if (device.virtualSize > 8 * 1024 ** 3) {
            const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', ...image.openArgs], { cwd: image.dir })).stdout) as {
              start: number;
              length: number;
              data: boolean;
            }[];
            ranges = map.filter((m) => m.data).map((m) => ({ start: m.start, length: m.length }));
            ranges.push({ start: 4 * 1024 ** 3 - 65536, length: 3 * 65536 }, { start: device.virtualSize - 65536, length: 65536 });
          }
          expect(await firstDifference(device, raw, ranges)).toBe(-1);
        } finally {
          await device.close();
          await rm(raw, { force: true });
        }
      });
    }
  });
}
