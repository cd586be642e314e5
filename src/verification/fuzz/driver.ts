/**
 * The fuzz loop: from the run's seed (src/verification/prng.ts), pick a seed image, mutate it, run
 * every selected target on the result and judge it (oracle.ts); every few cases, while the
 * differential budget lasts, give the image to QEMU too (qemu.ts). A finding not met before in the
 * run is shrunk to its smallest list of mutations (shrink.ts), compared with the saved regressions
 * (store.ts), and saved when new and an output folder is given. The same seed and options give the
 * same cases in the same order.
 */
import { usage } from '../../errors.js';
import { mulberry32 } from '../prng.js';
import type { QemuTools } from '../corpus/build.js';
import type { MutableSeed } from './mutate.js';
import { randomMutations } from './mutate.js';
import { applyMutations, type Mutation } from './mutation.js';
import { type Finding, runCase, StrayWatcher } from './oracle.js';
import { differential } from './qemu.js';
import { shrink } from './shrink.js';
import { type Regression, saveRegression } from './store.js';
import type { Target } from './targets.js';
import { pick } from './values.js';
import { Watchdog } from './watchdog.js';

/** A case holding the thread this long stops the run (watchdog.ts). */
const WATCHDOG_MS = 30_000;

/** Under --time, one case in this many also goes to QEMU (while the --qemu budget lasts). */
const QEMU_STRIDE = 4;

export interface FuzzOptions {
  seed: number;
  /** Cases (mutated images) to run; or run until `timeMs` has passed. */
  runs?: number;
  timeMs?: number;
  targets: readonly Target[];
  seeds: readonly MutableSeed[];
  /** How many cases also run through qemu-img (0: none). */
  qemu: number;
  qemuTools?: QemuTools;
  /** Where new findings are saved (the regression store); none: not saved. */
  out?: string;
  /** The saved regressions: a finding with one of their signatures is not new. */
  known: readonly Regression[];
  /** A folder of this run's own (the opener's placeholder file, QEMU's temporary images). */
  workDir: string;
  placeholder: string;
  log: (line: string) => void;
}

export interface TargetStats {
  name: string;
  cases: number;
  /** Wall time in the target, and processor time (all threads of the process). */
  ms: number;
  cpuMs: number;
  refused: number;
  findings: number;
}

export interface ReportedFinding {
  finding: Finding;
  seed: string;
  mutations: Mutation[];
  /** How many cases met it in this run. */
  hits: number;
  isNew: boolean;
  saved?: Regression;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  elapsedMs: number;
  stats: TargetStats[];
  findings: ReportedFinding[];
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  if (o.seeds.length === 0) throw usage('fuzz: no seed images (the corpus and --corpus DIR gave none)');
  const rng = mulberry32(o.seed);
  const stats = new Map<string, TargetStats>();
  const stat = (name: string) => {
    let s = stats.get(name);
    if (!s) stats.set(name, (s = { name, cases: 0, ms: 0, cpuMs: 0, refused: 0, findings: 0 }));
    return s;
  };
  for (const t of o.targets) stat(t.name);
  const found = new Map<string, ReportedFinding>();
  const knownSignatures = new Set(o.known.map((k) => k.signature));
  const watcher = new StrayWatcher();
  watcher.install();
  const watchdog = new Watchdog(WATCHDOG_MS, o.out);
  const trace = process.env['QCOW2_FUZZ_TRACE'] !== undefined;
  const started = performance.now();
  let cases = 0;
  let qemuDone = 0;
  // With a number of runs, the --qemu budget is spread evenly over them (every case when it is as large).
  const qemuStride = o.runs !== undefined && o.qemu > 0 ? Math.max(1, Math.floor(o.runs / o.qemu)) : QEMU_STRIDE;
  try {
    const report = async (f: Finding, seed: MutableSeed, mutations: Mutation[], again: (m: Mutation[]) => Promise<Finding[]>) => {
      stat(f.target).findings++;
      const seen = found.get(f.signature);
      if (seen) {
        seen.hits++;
        return;
      }
      const smallest = await shrink(mutations, async (m) => (await again(m)).some((x) => x.signature === f.signature));
      const isNew = !knownSignatures.has(f.signature);
      const entry: ReportedFinding = { finding: f, seed: seed.name, mutations: smallest, hits: 1, isNew };
      found.set(f.signature, entry);
      if (isNew && o.out !== undefined) entry.saved = await saveRegression(o.out, f, seed.name, smallest);
      o.log(`  ${isNew ? 'NEW' : 'known'} finding: ${f.target}/${f.oracle}: ${f.detail.slice(0, 160)} (seed ${seed.name}, ${smallest.length} mutation(s))`);
    };
    for (let i = 0; ; i++) {
      if (o.runs !== undefined && i >= o.runs) break;
      if (o.timeMs !== undefined && performance.now() - started >= o.timeMs) break;
      const seed = pick(rng, o.seeds);
      const mutations = randomMutations(rng, seed);
      const bytes = applyMutations(seed.bytes, mutations);
      cases++;
      for (const target of o.targets) {
        watchdog.enter({ seed: seed.name, target: target.name, mutations });
        if (trace) o.log(`  case ${i} ${target.name} on ${seed.name}: ${JSON.stringify(mutations)}`);
        const r = await runCase(target, bytes, o.placeholder, watcher);
        watchdog.idle();
        const s = stat(target.name);
        s.cases++;
        s.ms += r.ms;
        s.cpuMs += r.cpuMs;
        if (r.refused !== undefined) s.refused++;
        for (const f of r.findings) {
          watchdog.enter({ seed: seed.name, target: target.name, mutations });
          await report(f, seed, mutations, async (m) => (await runCase(target, applyMutations(seed.bytes, m), o.placeholder, watcher)).findings);
        }
      }
      if (o.qemuTools && qemuDone < o.qemu && i % qemuStride === 0) {
        qemuDone++;
        const tools = o.qemuTools;
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const fs = await differential(bytes, o.workDir, o.placeholder, tools);
        const s = stat('qemu');
        s.cases++;
        s.ms += performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        s.cpuMs += (cpu.user + cpu.system) / 1000;
        for (const f of fs) await report(f, seed, mutations, (m) => differential(applyMutations(seed.bytes, m), o.workDir, o.placeholder, tools));
      }
    }
  } finally {
    watcher.uninstall();
    await watchdog.stop();
  }
  return { seed: o.seed, cases, elapsedMs: performance.now() - started, stats: [...stats.values()], findings: [...found.values()] };
}
