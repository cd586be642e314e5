/**
 * The model-based campaign: random op sequences on images created with random options, run on an
 * engine and on the byte-array model side by side; after each sequence QEMU judges the image
 * (qemu-img check clean, and its raw conversion equal to the model). Used by test/property and by
 * `qcow2 verify`.
 */
import fc from 'fast-check';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Qcow2Device } from '../engine/types.js';
import { runTool } from '../tools/run.js';
import { ensure } from './check.js';
import { commandArbs } from './commands/index.js';
import { Model } from './model.js';
import { createChoiceArb, createImage, describeChoice, type CreateChoice } from './setup.js';
import { sameBytes, type System } from './system.js';

export type Opener = (path: string) => Promise<Qcow2Device>;

export async function runSequence(open: Opener, choice: CreateChoice, cmds: Iterable<fc.AsyncCommand<Model, System>>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-campaign-'));
  try {
    const created = await createImage(dir, choice);
    const sys: System = {
      dev: await open(created.image),
      path: created.image,
      async reopen() {
        await this.dev.close();
        this.dev = await open(created.image);
      },
    };
    const model = new Model(created.shape, created.size);
    try {
      await fc.asyncModelRun(() => ({ model, real: sys }), cmds);
    } finally {
      await sys.dev.close();
    }
    const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
    const check = await runTool(qemuImg, ['check', created.image]);
    ensure(check.code === 0, `qemu-img check exit ${check.code} on ${describeChoice(choice)}:\n${check.stdout}${check.stderr}`);
    const raw = join(dir, 'final.raw');
    const convert = await runTool(qemuImg, ['convert', '-O', 'raw', created.image, raw]);
    ensure(convert.code === 0, `qemu-img convert failed: ${convert.stderr}`);
    const at = sameBytes(new Uint8Array(await readFile(raw)), model.bytes);
    ensure(at === -1, `qemu-img reads guest byte ${at} differently from the model`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface CampaignOptions {
  runs: number;
  maxCommands?: number;
  seed?: number;
  path?: string;
  /** Stop at the first failure without shrinking (CI: a failure is reported fast). */
  endOnFailure?: boolean;
}

export function campaignProperty(open: Opener, maxCommands = 30) {
  return fc.asyncProperty(createChoiceArb, fc.commands(commandArbs, { maxCommands }), (choice, cmds) =>
    runSequence(open, choice, cmds),
  );
}

/** Runs the campaign and returns fast-check's details (seed, path and counterexample on failure). */
export async function runCampaign(open: Opener, opts: CampaignOptions) {
  return fc.check(campaignProperty(open, opts.maxCommands), {
    numRuns: opts.runs,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.path !== undefined ? { path: opts.path } : {}),
    endOnFailure: opts.endOnFailure ?? false,
  });
}

export type { CreateChoice };
