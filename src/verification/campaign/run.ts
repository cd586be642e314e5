/**
 * The model-based campaign: random op sequences on images created with random options, run on one
 * or more engines and on the byte-array model side by side; after each sequence QEMU judges the image
 * (qemu-img check clean, and its raw conversion equal to the model). Used by test/property and by
 * `qcow2 verify`.
 */
import fc from 'fast-check';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareDecoders } from '../conformance/agree.js';
import { checkInvariants } from '../conformance/invariants.js';
import { collectStructures } from '../conformance/structures.js';
import type { Qcow2Device } from '../../engine/types.js';
import { readMetadata } from '../../image/metadata.js';
import { NodeFile } from '../../io/node-file.js';
import { runTool } from '../../tools/run.js';
import { qemuBitmaps, qemuDirtyRanges } from '../qemu-bitmaps.js';
import { qemuImageArgs } from '../qemu-image.js';
import { ensure } from './check.js';
import { commandArbs } from './commands/index.js';
import { Model } from './model.js';
import { createChoiceArb, createImage, plainChoiceArb, type CreateChoice, type Created } from './setup.js';
import { type Engine, type Lane, openLane, sameBytes, type System } from './system.js';

/**
 * One sequence of commands on a fresh image per engine (created with the same options), each
 * checked against the model as it runs; then every image is judged: our structural check (both
 * decoders agree on every structure, the spec's rules hold), qemu-img check clean, and its raw
 * conversion by qemu-img equal to the model.
 */
export async function runSequence(engines: Engine[], choice: CreateChoice, cmds: Iterable<fc.AsyncCommand<Model, System>>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-campaign-'));
  try {
    const lanes: Lane[] = [];
    let shape: Created['shape'] | undefined;
    let size = 0;
    for (const engine of engines) {
      const laneDir = join(dir, engine.name);
      await mkdir(laneDir);
      const created = await createImage(laneDir, choice);
      shape = created.shape;
      size = created.size;
      lanes.push({ engine, path: created.image, passphrase: created.shape.passphrase, dev: undefined as unknown as Qcow2Device });
    }
    try {
      for (const lane of lanes) lane.dev = await openLane(lane);
      const sys: System = {
        lanes,
        async reopen() {
          for (const lane of lanes) {
            await lane.dev.close();
            lane.dev = await openLane(lane);
          }
        },
      };
      const model = new Model(shape as Created['shape'], size);
      await fc.asyncModelRun(() => ({ model, real: sys }), cmds);
      for (const lane of lanes) await judge(lane, model, dir);
    } finally {
      for (const lane of lanes) await lane.dev?.close().catch(() => {});
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Our structural check of an image: both decoders agree on every structure, and the spec's rules hold. */
async function structuralProblems(path: string): Promise<string[]> {
  const file = await NodeFile.open(path, { readOnly: true });
  try {
    const meta = await readMetadata(file);
    const problems: string[] = [];
    for (const s of await collectStructures(file, meta)) {
      for (const d of compareDecoders(s)) problems.push(`decoders differ in ${d.structure} at 0x${d.offset.toString(16)}: ${d.path}`);
      for (const v of checkInvariants(s, meta)) problems.push(`${v.structure} entry at 0x${v.offset.toString(16)}: ${v.message}`);
    }
    return problems;
  } finally {
    await file.close();
  }
}

async function judge(lane: Lane, model: Model, dir: string): Promise<void> {
  await lane.dev.close();
  const problems = await structuralProblems(lane.path);
  ensure(problems.length === 0, `${lane.engine.name} engine: our structural check: ${problems.slice(0, 5).join('; ')}`);
  const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
  const check = await runTool(qemuImg, ['check', ...qemuImageArgs(lane)]);
  ensure(check.code === 0, `${lane.engine.name} engine: qemu-img check exit ${check.code}:\n${check.stdout}${check.stderr}`);
  const raw = join(dir, `${lane.engine.name}.raw`);
  const convert = await runTool(qemuImg, ['convert', '-O', 'raw', ...qemuImageArgs(lane), raw]);
  ensure(convert.code === 0, `${lane.engine.name} engine: qemu-img convert failed: ${convert.stderr}`);
  const at = sameBytes(new Uint8Array(await readFile(raw)), model.bytes);
  ensure(at === -1, `${lane.engine.name} engine: qemu-img reads guest byte ${at} differently from the model`);
  await rm(raw, { force: true });
  await judgeBitmaps(lane, model);
  lane.dev = await openLane(lane); // closed again by the caller
}

/**
 * QEMU's view of the closed image's persistent bitmaps equals the model's: the same names, each
 * with the model's granularity, enabled ('auto') exactly when the model's is, none left in use,
 * and the same dirty ranges (qemu-nbd -B).
 */
async function judgeBitmaps(lane: Lane, model: Model): Promise<void> {
  if (model.shape.version !== 3) return;
  const who = `${lane.engine.name} engine`;
  const listed = await qemuBitmaps(lane);
  const names = (xs: { name: string }[]) => xs.map((b) => b.name).sort().join(', ');
  ensure(names(listed) === names(model.bitmaps), `${who}: qemu-img info lists bitmaps [${names(listed)}], the model has [${names(model.bitmaps)}]`);
  for (const b of model.bitmaps) {
    const q = listed.find((x) => x.name === b.name)!;
    ensure(q.granularity === b.granularity, `${who}: bitmap '${b.name}' has granularity ${q.granularity} for QEMU, ${b.granularity} in the model`);
    ensure(!q.flags.includes('in-use'), `${who}: bitmap '${b.name}' is left in use after a clean close`);
    ensure(q.flags.includes('auto') === b.enabled, `${who}: bitmap '${b.name}' flags [${q.flags.join(', ')}], the model's is ${b.enabled ? 'enabled' : 'disabled'}`);
    const theirs = await qemuDirtyRanges(lane, b.name);
    const mine = model.dirtyRanges(b.name);
    const show = (rs: [number, number][]) => rs.slice(0, 6).map(([x, y]) => `[0x${x.toString(16)}, 0x${y.toString(16)})`).join(' ') + (rs.length > 6 ? ' ...' : '');
    ensure(JSON.stringify(theirs) === JSON.stringify(mine), `${who}: bitmap '${b.name}' dirty ranges for QEMU ${show(theirs)}, in the model ${show(mine)}`);
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

/** The campaign as a property: encrypted shapes among the random ones when every engine opens LUKS images. */
export function campaignProperty(engines: Engine[], maxCommands = 30) {
  const shapes = engines.every((e) => e.luks === true) ? createChoiceArb : plainChoiceArb;
  return fc.asyncProperty(shapes, fc.commands(commandArbs, { maxCommands }), (choice, cmds) =>
    runSequence(engines, choice, cmds),
  );
}

/** Runs the campaign and returns fast-check's details (seed, path and counterexample on failure). */
export async function runCampaign(engines: Engine[], opts: CampaignOptions) {
  return fc.check(campaignProperty(engines, opts.maxCommands), {
    numRuns: opts.runs,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.path !== undefined ? { path: opts.path } : {}),
    endOnFailure: opts.endOnFailure ?? false,
  });
}

export type { CreateChoice, Engine };
