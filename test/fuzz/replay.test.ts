// The fuzzer's regressions (test/fuzz/cases/*.json, written by `qcow2 fuzz`): each saved case is
// its seed image from the QEMU-built corpus with its mutations applied, run again through the
// target that failed, and the oracles must hold (no finding at all). A case marked `known` is a
// real bug not fixed yet: its title says KNOWN BUG and why, and it checks that the oracle still
// fails with the saved signature; once the bug is fixed that check fails and asks for the mark to go.
// Then a short fuzz run with a fixed seed must find nothing that is not saved here.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findQemuTools } from '../../src/verification/corpus/build.js';
import { runFuzz } from '../../src/verification/fuzz/driver.js';
import type { MutableSeed } from '../../src/verification/fuzz/mutate.js';
import { applyMutations } from '../../src/verification/fuzz/mutation.js';
import { type Finding, runCase, StrayWatcher } from '../../src/verification/fuzz/oracle.js';
import { differential } from '../../src/verification/fuzz/qemu.js';
import { corpusSeeds } from '../../src/verification/fuzz/seeds.js';
import { loadRegressions, storedMutations } from '../../src/verification/fuzz/store.js';
import { TARGETS, targetNamed } from '../../src/verification/fuzz/targets.js';
import { CORPUS_DIR, REPO_ROOT } from '../interop/corpus.js';

const STORE = join(REPO_ROOT, 'test', 'fuzz', 'cases');
const regressions = loadRegressions(STORE);

/** The bounded run: fixed seed, fixed number of cases, all targets, a few through QEMU. */
export const REPLAY_FUZZ = { seed: 20261202, runs: 40, qemu: 4 };

let seeds: MutableSeed[] = [];
let workDir = '';
let placeholder = '';
const watcher = new StrayWatcher();

beforeAll(async () => {
  seeds = await corpusSeeds(CORPUS_DIR, () => {});
  workDir = await mkdtemp(join(tmpdir(), 'qcow2-fuzz-replay-'));
  placeholder = join(workDir, 'placeholder.qcow2');
  await writeFile(placeholder, new Uint8Array(0));
  watcher.install();
});

afterAll(async () => {
  watcher.uninstall();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** A case that held the thread, grew the memory or killed the process runs alone in a child process (the built module; the tests' global setup builds dist/), killed after 10 s. */
async function isolated(target: string, bytes: Uint8Array): Promise<Finding[]> {
  const child = (await import(join(REPO_ROOT, 'dist', 'verification', 'fuzz', 'child.js'))) as typeof import('../../src/verification/fuzz/child.js');
  return child.runIsolated(target, bytes, workDir, placeholder, 10_000);
}

async function replay(target: string, oracle: string, bytes: Uint8Array): Promise<Finding[]> {
  if (oracle === 'hang' || oracle === 'memory' || oracle === 'crash') return isolated(target, bytes);
  if (target === 'qemu') return differential(bytes, workDir, placeholder, await findQemuTools());
  const t = targetNamed(target);
  if (!t) throw new Error(`no fuzz target '${target}'`);
  return (await runCase(t, bytes, placeholder, watcher)).findings;
}

describe('saved fuzz findings replay', () => {
  it('the store holds cases', () => {
    expect(regressions.length).toBeGreaterThan(0);
  });

  for (const r of regressions) {
    const image = async () => {
      const seed = seeds.find((s) => s.name === r.seed);
      expect(seed, `seed image ${r.seed}`).toBeDefined();
      return applyMutations(seed!.bytes, storedMutations(r));
    };
    if (r.known === undefined) {
      it(`${r.name}: the oracles hold`, async () => {
        const findings = await replay(r.target, r.oracle, await image());
        expect(findings.map((f) => `${f.oracle}: ${f.detail}`)).toEqual([]);
      }, 60_000);
    } else {
      // A known bug: the case must still show it (its oracle fails); once fixed, this fails and says so.
      it(`${r.name}: KNOWN BUG, the oracle fails until it is fixed: ${r.known}`, async () => {
        const findings = await replay(r.target, r.oracle, await image());
        expect(
          findings.map((f) => f.signature),
          `${r.name} no longer reproduces '${r.signature}': the bug is fixed, remove its 'known' mark`,
        ).toContain(r.signature);
      }, 60_000);
    }
  }
});

describe('bounded fuzz run', () => {
  it(`seed ${REPLAY_FUZZ.seed}, ${REPLAY_FUZZ.runs} cases: every finding is a saved regression`, async () => {
    watcher.uninstall();
    const report = await runFuzz({
      seed: REPLAY_FUZZ.seed,
      runs: REPLAY_FUZZ.runs,
      targets: TARGETS,
      seeds,
      qemu: REPLAY_FUZZ.qemu,
      qemuTools: await findQemuTools(),
      known: regressions,
      workDir,
      placeholder,
      log: () => {},
    });
    watcher.install();
    expect(report.cases).toBe(REPLAY_FUZZ.runs);
    // Time and memory depend on the machine's load (other tests, other users): those oracles are
    // judged by `qcow2 fuzz` runs and by the saved cases above, not by this fixed-budget run.
    const timing = new Set(['slow', 'hang', 'memory']);
    const fresh = report.findings.filter((f) => f.isNew && !timing.has(f.finding.oracle));
    expect(fresh.map((f) => `${f.finding.signature} (seed ${f.seed})`)).toEqual([]);
  }, 120_000);
});
