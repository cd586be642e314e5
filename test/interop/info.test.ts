/**
 * `qcow2 info --output=json` equals `qemu-img info --output=json` on every corpus image: every key
 * and value, the required ones (virtual-size, cluster-size, format, backing-filename(-format),
 * snapshots, format-specific.data.*) and the rest (filename, actual-size, dirty-flag, …).
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { RECIPES } from '../../src/verification/corpus/recipes.js';
import { qcow2 } from '../support/cli.js';
import { getCorpusImage } from './corpus.js';

describe('qcow2 info matches qemu-img info', () => {
  for (const recipe of RECIPES) {
    it(recipe.name, async () => {
      const image = await getCorpusImage(recipe.name);
      const theirs = await execa('qemu-img', ['info', '--output=json', ...image.infoArgs, image.image], { cwd: image.dir });
      const ours = await qcow2(['info', '--output=json', image.image], { cwd: image.dir });
      expect(ours.stderr).toBe('');
      expect(ours.exitCode).toBe(0);
      expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
    });
  }
});
