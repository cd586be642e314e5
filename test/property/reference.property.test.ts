/**
 * Model-based: random op sequences on the reference engine, over images created with random
 * options, against the byte-array model; after each sequence QEMU judges the image (qemu-img check
 * clean, and its raw conversion equal to the model). A failure prints fast-check's seed and path;
 * replay with QCOW2_PROPERTY_SEED / QCOW2_PROPERTY_PATH and keep it in regressions.test.ts.
 */
import { execa } from 'execa';
import fc from 'fast-check';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openReference } from '../../src/reference/open.js';
import { commandArbs } from './commands/index.js';
import { Model } from './model.js';
import { createChoiceArb, createImage, describeChoice, type CreateChoice } from './setup.js';
import { sameBytes, type System } from './system.js';

export const RUNS = Number(process.env['QCOW2_PROPERTY_RUNS'] ?? 25);

export async function runSequence(choice: CreateChoice, cmds: Iterable<fc.AsyncCommand<Model, System>>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-prop-'));
  try {
    const created = await createImage(dir, choice);
    const sys: System = {
      dev: await openReference(created.image),
      path: created.image,
      async reopen() {
        await this.dev.close();
        this.dev = await openReference(created.image);
      },
    };
    const model = new Model(created.shape, created.size);
    try {
      await fc.asyncModelRun(() => ({ model, real: sys }), cmds);
    } finally {
      await sys.dev.close();
    }
    const check = await execa('qemu-img', ['check', created.image], { reject: false });
    expect(check.exitCode, `qemu-img check on ${describeChoice(choice)}:\n${check.stdout}${check.stderr}`).toBe(0);
    const raw = join(dir, 'final.raw');
    await execa('qemu-img', ['convert', '-O', 'raw', created.image, raw]);
    const bytes = new Uint8Array(await readFile(raw));
    expect(sameBytes(bytes, model.bytes), 'qemu-img reads something else than the model').toBe(-1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('reference engine against the byte-array model', () => {
  it('random op sequences on random images', async () => {
    const seed = process.env['QCOW2_PROPERTY_SEED'];
    const path = process.env['QCOW2_PROPERTY_PATH'];
    await fc.assert(
      fc.asyncProperty(createChoiceArb, fc.commands(commandArbs, { maxCommands: 30 }), (choice, cmds) => runSequence(choice, cmds)),
      { numRuns: RUNS, ...(seed ? { seed: Number(seed) } : {}), ...(path ? { path } : {}), endOnFailure: process.env['CI'] === 'true' },
    );
  }, 900_000);
});
