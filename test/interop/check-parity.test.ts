/**
 * `qcow2 check` reports what `qemu-img check` (QEMU 7.2) reports on every corpus image: the same
 * JSON text (keys, order, omitted zero counts, filename as given) and the same exit status, plus
 * the human text. The LUKS image needs the secret for qemu-img and for us (both unlock it),
 * so there qemu-img gets its --image-opts and the filename it echoes is swapped for ours. Then
 * repairs on copies in a temp dir (never the corpus): `-r all` and `-r leaks` on the dirty
 * lazy-refcounts image match qemu-img's output on an identical copy and leave the same guest data.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECIPES } from '../../src/verification/corpus/recipes.js';
import { qcow2 } from '../support/cli.js';
import { requireTool } from '../support/tools.js';
import { getCorpusImage } from './corpus.js';

const qemuImg = (args: string[], cwd?: string) => execa('qemu-img', args, { reject: false, ...(cwd ? { cwd } : {}) });

beforeAll(async () => {
  await requireTool('qemu-img');
});

describe('qcow2 check matches qemu-img check on the corpus', () => {
  for (const recipe of RECIPES) {
    it(recipe.name, async () => {
      const image = await getCorpusImage(recipe.name);
      const luks = recipe.features.some((f) => f.startsWith('encryption='));
      const theirs = await qemuImg(['check', '--output=json', ...image.openArgs], image.dir);
      // Both need the secret for the LUKS image (ours takes qemu-img's --object/--image-opts).
      const operand = luks ? image.openArgs : [image.image];
      const ours = await qcow2(['check', '--output=json', ...operand], { cwd: image.dir });
      const expected = luks ? theirs.stdout.replace(image.openArgs.at(-1) ?? '', image.image) : theirs.stdout;
      expect(ours.stdout).toBe(expected);
      expect(ours.exitCode).toBe(theirs.exitCode);
      expect(ours.exitCode).toBe(image.checkExitCode);

      const theirsHuman = await qemuImg(['check', ...image.openArgs], image.dir);
      const oursHuman = await qcow2(['check', ...operand], { cwd: image.dir });
      expect(oursHuman.stdout).toBe(theirsHuman.stdout);
      expect(oursHuman.exitCode).toBe(theirsHuman.exitCode);
    });
  }
});

describe('qcow2 check -r on copies of the dirty lazy-refcounts image', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qcow2-check-parity-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const mode of ['all', 'leaks'] as const) {
    for (const output of ['json', 'human'] as const) {
      it(`-r ${mode} --output=${output}`, async () => {
        const source = (await getCorpusImage('v3-lazy-dirty')).image;
        const mine = join(dir, `ours-${mode}-${output}.qcow2`);
        const qemus = join(dir, `qemu-${mode}-${output}.qcow2`);
        await copyFile(source, mine);
        await copyFile(source, qemus);
        // Same file name length, so the JSON texts differ only in the name.
        const theirs = await qemuImg(['check', `--output=${output}`, '-r', mode, qemus]);
        const ours = await qcow2(['check', `--output=${output}`, '-r', mode, mine]);
        expect(ours.exitCode).toBe(theirs.exitCode);
        expect(ours.stdout).toBe(theirs.stdout.replaceAll(qemus, mine));
        const after = await qemuImg(['check', '--output=json', mine]);
        const afterTheirs = await qemuImg(['check', '--output=json', qemus]);
        expect(after.exitCode).toBe(afterTheirs.exitCode);
        expect((await qemuImg(['compare', source, mine])).exitCode).toBe(0);
      });
    }
  }

  it('-f raw: the format has no checks (63)', async () => {
    const image = await getCorpusImage('v3-c64k');
    const theirs = await qemuImg(['check', '-f', 'raw', image.image]);
    const ours = await qcow2(['check', '-f', 'raw', image.image]);
    expect(theirs.exitCode).toBe(63);
    expect(ours.exitCode).toBe(63);
    expect(ours.stdout).toBe('');
  });

  it('a missing file cannot be opened (1)', async () => {
    const missing = join(dir, 'missing.qcow2');
    expect((await qemuImg(['check', missing])).exitCode).toBe(1);
    const ours = await qcow2(['check', missing]);
    expect(ours.exitCode).toBe(1);
    expect(ours.stdout).toBe('');
  });
});

describe('qcow2 check on an image whose L1 table runs over its data (l1_size patched to 40000)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qcow2-check-garbage-l1-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // The compressed image's data read as L1 and L2 entries: half a million messages, many of them
  // entries whose hex begins with a zero nibble, which QEMU prints without it (%PRIx64).
  it('prints the same half a million lines, in the same order, and the same verdict', async () => {
    const path = join(dir, 'garbage-l1.qcow2');
    await copyFile((await getCorpusImage('v3-convert-c-zlib')).image, path);
    const bytes = await readFile(path);
    bytes.writeUInt32BE(40000, 36); // l1_size
    await writeFile(path, bytes);
    const theirs = await qemuImg(['check', path]);
    const ours = await qcow2(['check', path]);
    expect(theirs.stderr.split('\n').length).toBeGreaterThan(400_000);
    expect(ours.exitCode).toBe(theirs.exitCode);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stderr === theirs.stderr).toBe(true);
  });
});
