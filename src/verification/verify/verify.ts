/**
 * `qcow2 verify`: the project's main check, bounded by default to a few minutes.
 *  1. builds an image corpus with qemu-img / qemu-io across the feature matrix and checks our
 *     reading of it: both decoders agree on every structure, spec rules hold, `info` and reads
 *     equal QEMU's (src/verification/conformance), on every engine lane that reads (src/verification/engines.ts);
 *  2. runs the differential model-based campaign: the byte-array model, the reference engine and the
 *     optimized engine side by side, concurrent batches included (src/verification/campaign/run.ts);
 *  3. runs us -> QEMU round trips for every create option combination (src/verification/campaign/roundtrip.ts);
 *  4. compares `qcow2 check` with `qemu-img check` on the corpus and judges a sample of crash
 *     states (safety.ts).
 * Reached through the program entry (src/main.ts), the one file outside this wing that imports it.
 * Prints one row per image, then a table of what was checked; exits 1 on any problem.
 */
import fc from 'fast-check';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCampaign } from '../campaign/run.js';
import { ROUND_TRIP_IMAGES, roundTrip, scriptArb, type RoundTripRun } from '../campaign/roundtrip.js';
import { checkImage, type ImageReport } from '../conformance/check-image.js';
import { checkReads } from '../conformance/read-parity.js';
import { buildCorpus } from '../corpus/build.js';
import { createImage } from '../../create/create.js';
import { parseCreateOptions, typedCreateOptions } from '../../create/options.js';
import { usage } from '../../errors.js';
import { openOptimized } from '../../optimized/open.js';
import { parse } from '../../cli/args.js';
import type { CliContext } from '../../cli/context.js';
import { pad } from '../../cli/format-human.js';
import { parseScript } from '../../cli/io/parse.js';
import { runOps } from '../../cli/io/run.js';
import { lanesFor } from '../engines.js';
import type { Row } from './row.js';
import { checkParity, crashSample } from './safety.js';

const DEFAULT_DIR = join(tmpdir(), 'qcow2-verify-corpus');

function count(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw usage(`verify: --${name} takes a whole number, not '${value}'`);
  return n;
}

export async function verify(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      dir: { type: 'string' },
      filter: { type: 'string' },
      runs: { type: 'string' },
      'round-trips': { type: 'string' },
      seed: { type: 'string' },
      'crash-states': { type: 'string' },
    },
    'verify',
  );
  if (positionals.length > 0) throw usage(`verify: unexpected argument '${positionals[0]}'`);
  const runs = count(values.runs, 100, 'runs');
  const roundTrips = count(values['round-trips'], 2, 'round-trips');
  const crashStates = count(values['crash-states'], 400, 'crash-states');
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : count(values.seed, 0, 'seed');
  const started = Date.now();
  const rows: Row[] = [];
  const out = (line = '') => ctx.stdout(`${line}\n`);

  rows.push(...(await corpusChecks(values.dir, values.filter, out)));
  out();
  rows.push(await campaign(runs, seed, out));
  rows.push(await roundTripChecks(roundTrips, seed, out));
  rows.push(await crashSample(crashStates, seed, out));

  out();
  out(`${pad('what was checked', 64)} ${pad('cases', 6, true)} ${pad('failed', 6, true)}  notes`);
  for (const r of rows) out(`${pad(r.what, 64)} ${pad(String(r.cases), 6, true)} ${pad(String(r.failed), 6, true)}  ${r.note}`);
  const failed = rows.reduce((n, r) => n + r.failed, 0);
  out(`\n${failed === 0 ? 'all checks passed' : `${failed} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${seed})`);
  return failed === 0 ? 0 : 1;
}

async function corpusChecks(dirOption: string | undefined, filterText: string | undefined, out: (line?: string) => void): Promise<Row[]> {
  const dir = resolve(dirOption ?? DEFAULT_DIR);
  const filter = filterText === undefined ? undefined : new RegExp(filterText);
  const t0 = Date.now();
  out(`Building the image corpus with qemu-img/qemu-io in ${dir}`);
  const corpus = await buildCorpus(dir, filter ? { filter: (name) => filter.test(name) } : {});
  out(`${corpus.length} images ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const checkRow = await checkParity(corpus, out);
  out();
  out(`${pad('image', 28)} ${pad('features', 44)} ${pad('structs', 7, true)} ${pad('entries', 9, true)}  result`);
  const reports: ImageReport[] = [];
  let readCases = 0;
  let readFailures = 0;
  for (const image of corpus) {
    const r = await checkImage(image);
    if (!image.features.includes('encryption=luks')) {
      for (const lane of lanesFor('reads')) {
        readCases++;
        const device = await lane.open(image.image, { readOnly: true }).catch((err: Error) => err);
        const problem = device instanceof Error ? device.message : await checkReads(image, device).finally(() => device.close());
        if (problem) {
          readFailures++;
          r.problems.push(`reads (${lane.name} engine): ${problem}`);
        }
      }
    }
    reports.push(r);
    const result = r.problems.length === 0 ? 'ok' : `${r.problems.length} problem(s)`;
    out(`${pad(r.name, 28)} ${pad(clip(image.features.join(','), 44), 44)} ${pad(String(r.structures), 7, true)} ${pad(String(r.entries), 9, true)}  ${result}`);
    for (const p of r.problems.slice(0, 10)) out(`    ${p}`);
  }
  const structures = reports.reduce((n, r) => n + r.structures, 0);
  const entries = reports.reduce((n, r) => n + r.entries, 0);
  const conformanceFailures = reports.filter((r) => r.problems.some((p) => !p.startsWith('reads '))).length;
  return [
    {
      what: 'corpus: both decoders agree, spec rules hold, info = qemu-img',
      cases: reports.length,
      failed: conformanceFailures,
      note: `${structures} structures, ${entries} entries`,
    },
    { what: 'corpus: reads = qemu-img convert (reference and optimized)', cases: readCases, failed: readFailures, note: 'on every data range of qemu-img map' },
    checkRow,
  ];
}

async function campaign(runs: number, seed: number, out: (line?: string) => void): Promise<Row> {
  out(`Differential campaign (model, reference engine, optimized engine): ${runs} random op sequences on random images (seed ${seed}) ...`);
  const details = await runCampaign(lanesFor('campaign'), { runs, seed, endOnFailure: true });
  if (details.failed) {
    out(`  FAILED after ${details.numRuns} runs: seed ${details.seed}, path ${details.counterexamplePath ?? ''}`);
    out(`  counterexample: ${fc.stringify(details.counterexample)}`);
    out(`  ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`);
  }
  return {
    what: 'differential campaign: model, reference and optimized engines',
    cases: details.numRuns,
    failed: details.failed ? 1 : 0,
    note: details.failed ? `replay: seed ${details.seed} path ${details.counterexamplePath ?? ''}` : 'each judged by qemu-img check + convert',
  };
}

const inProcess: RoundTripRun = {
  async create(path, options, size, backing) {
    const set = parseCreateOptions([options]);
    set.set('size', String(size));
    if (backing) {
      set.set('backing_file', backing.path);
      set.set('backing_fmt', backing.format);
    }
    await createImage(path, typedCreateOptions(set));
  },
  async io(path, script) {
    const device = await openOptimized(path); // the engine the CLI runs on
    try {
      const sink = { stdout: () => {}, stderr: () => {} };
      return (await runOps(device, parseScript(script), sink)).failures === 0 ? 0 : 1;
    } finally {
      await device.close();
    }
  },
};

async function roundTripChecks(perImage: number, seed: number, out: (line?: string) => void): Promise<Row> {
  out(`Round trips: ${perImage} random qemu-io script(s) on each of ${ROUND_TRIP_IMAGES.length} create option sets ...`);
  let failed = 0;
  let cases = 0;
  for (const [i, img] of ROUND_TRIP_IMAGES.entries()) {
    if (perImage === 0) break;
    const details = await fc.check(
      fc.asyncProperty(scriptArb(img), (script) => roundTrip(inProcess, img, script)),
      { numRuns: perImage, seed: seed + i, endOnFailure: true },
    );
    cases += details.numRuns;
    if (details.failed) {
      failed++;
      out(`  FAILED on ${img.options}: ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`);
    }
  }
  return { what: 'round trips: qcow2 create + io, judged by qemu-img check/compare', cases, failed, note: 'scripts also run by qemu-io on raw' };
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
