/**
 * `qcow2 fuzz`: seeds from the corpus (and --corpus DIR), the loop (driver.ts), then one row per
 * target (cases, refused with a typed error, findings, cases per second on one core) and the
 * findings; exit status 1 when a finding is new (not among the saved regressions).
 * Reached through the program entry (src/main.ts), as `qcow2 verify` is.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { usage } from '../../errors.js';
import type { CliContext } from '../../cli/context.js';
import { pad } from '../../cli/format-human.js';
import type { FuzzArgs } from '../../cli/fuzz.js';
import { findQemuTools } from '../corpus/build.js';
import { runFuzz } from './driver.js';
import { describeMutation } from './mutation.js';
import { corpusSeeds, dirSeeds } from './seeds.js';
import { loadRegressions } from './store.js';
import { TARGETS } from './targets.js';

/** The corpus cache `qcow2 verify` uses too (and the fuzz benchmarks, bench/fuzz-*.mjs). */
export const CORPUS_CACHE = join(tmpdir(), 'qcow2-verify-corpus');
/** In the repository, the saved regressions (and where new ones go unless --out says). */
const REPO_STORE = join('test', 'fuzz', 'cases');

export async function fuzzCommand(args: FuzzArgs, ctx: CliContext): Promise<number> {
  const out = (line = '') => ctx.stdout(`${line}\n`);
  const targets = args.targets.length === 0 ? TARGETS : args.targets.map((name) => {
    const t = TARGETS.find((x) => x.name === name);
    if (!t) throw usage(`fuzz: no target '${name}' (${TARGETS.map((x) => x.name).join(', ')})`);
    return t;
  });
  const store = args.out !== undefined ? resolve(args.out) : existsSync(REPO_STORE) ? resolve(REPO_STORE) : undefined;
  const known = store ? loadRegressions(store) : [];
  out(`Seeds: the QEMU-built corpus in ${CORPUS_CACHE}${args.corpus ? ` and ${args.corpus}` : ''}`);
  let pattern: RegExp | undefined;
  try {
    pattern = args.seeds === undefined ? undefined : new RegExp(args.seeds);
  } catch {
    throw usage(`fuzz: --seeds takes a regular expression, not '${args.seeds}'`);
  }
  const seeds = [...(await corpusSeeds(CORPUS_CACHE, out, pattern && ((name) => pattern.test(name)))), ...(args.corpus ? await dirSeeds(resolve(args.corpus), out) : [])];
  const qemuTools = args.qemu > 0 ? await findQemuTools() : undefined;
  const workDir = await mkdtemp(join(tmpdir(), 'qcow2-fuzz-'));
  const placeholder = join(workDir, 'placeholder.qcow2');
  await writeFile(placeholder, new Uint8Array(0));
  out(`Fuzzing ${targets.map((t) => t.name).join(', ')} on ${seeds.length} seed images, seed ${args.seed}, ${args.runs !== undefined ? `${args.runs} cases` : `for ${(args.timeMs ?? 0) / 1000} s`}${args.qemu ? `, ${args.qemu} through qemu-img` : ''}; ${known.length} saved regressions${store ? ` (${store})` : ''}`);
  let report;
  try {
    report = await runFuzz({
      seed: args.seed,
      ...(args.runs !== undefined ? { runs: args.runs } : {}),
      ...(args.timeMs !== undefined ? { timeMs: args.timeMs } : {}),
      targets,
      seeds,
      qemu: args.qemu,
      ...(qemuTools ? { qemuTools } : {}),
      ...(store ? { out: store } : {}),
      known,
      workDir,
      placeholder,
      log: out,
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  out();
  // cases/s: cases over the wall time spent in the target (one case at a time, so one core);
  // cases/cpu-s: over the processor time the process used meanwhile (waits for the thread pool excluded).
  out(`${pad('target', 10)} ${pad('cases', 7, true)} ${pad('refused', 8, true)} ${pad('findings', 9, true)} ${pad('cases/s', 8, true)} ${pad('cases/cpu-s', 12, true)}  what`);
  for (const s of report.stats) {
    const per = (ms: number) => (ms > 0 ? (s.cases / (ms / 1000)).toFixed(0) : '-');
    const what = TARGETS.find((t) => t.name === s.name)?.what ?? 'differential: qemu-img info, convert, check';
    out(`${pad(s.name, 10)} ${pad(String(s.cases), 7, true)} ${pad(String(s.refused), 8, true)} ${pad(String(s.findings), 9, true)} ${pad(per(s.ms), 8, true)} ${pad(per(s.cpuMs), 12, true)}  ${what}`);
  }
  const fresh = report.findings.filter((f) => f.isNew);
  out();
  out(`${report.cases} cases in ${(report.elapsedMs / 1000).toFixed(1)} s (seed ${report.seed}); ${report.findings.length} distinct finding(s), ${fresh.length} new`);
  for (const f of report.findings) {
    out(`  ${f.isNew ? 'NEW  ' : 'known'} ${f.finding.target}/${f.finding.oracle} x${f.hits}: ${f.finding.detail.slice(0, 200)}`);
    out(`        seed ${f.seed}${f.saved ? `, saved as ${f.saved.name}` : ''}`);
    for (const m of f.mutations) out(`        ${describeMutation(m)}`);
  }
  return fresh.length > 0 ? 1 : 0;
}
