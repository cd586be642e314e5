// The fuzz targets in Jazzer.js's form (fuzz/jazzer/*.js over src/verification/fuzz/jazzer.ts),
// driven here as libFuzzer would drive them, since Jazzer.js itself does not run on this Debian
// (its prebuilt library needs glibc 2.38). Each entry point's `fuzz` is loaded as Jazzer.js loads
// it and called with deterministic byte buffers: it must give the verdict the oracles give on the
// case the bytes decode to (resolve when they find nothing, throw a JazzerFinding with their
// findings otherwise), and every saved regression, handed over as bytes, must give its replay's
// verdict (test/fuzz/replay.test.ts): a `known` bug throws its signature, a fixed one passes.
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Finding, runCase, StrayWatcher } from '../../src/verification/fuzz/oracle.js';
import type { MutableSeed } from '../../src/verification/fuzz/mutate.js';
import { applyMutations } from '../../src/verification/fuzz/mutation.js';
import { corpusSeeds } from '../../src/verification/fuzz/seeds.js';
import { loadRegressions, storedMutations } from '../../src/verification/fuzz/store.js';
import { TARGETS, targetNamed } from '../../src/verification/fuzz/targets.js';
import { mulberry32 } from '../../src/verification/prng.js';
import { CORPUS_DIR, REPO_ROOT } from '../interop/corpus.js';

type Jazzer = typeof import('../../src/verification/fuzz/jazzer.js');
type Fuzz = (data: Uint8Array) => Promise<void>;

const ENTRIES = join(REPO_ROOT, 'fuzz', 'jazzer');
/** Deterministic buffers per target (seven targets: a few hundred in all). */
const BUFFERS_PER_TARGET = 48;
/** Oracles that depend on the machine's load or need a process of their own: judged by the replay, not here. */
const NOT_HERE = new Set(['slow', 'hang', 'memory', 'crash']);

// The entry points and the test's own checks go through the built modules (dist/, which the
// tests' global setup builds), as Jazzer.js would: one JazzerFinding class, one module state.
let jazzer: Jazzer;
const fuzzers = new Map<string, Fuzz>();
let seeds: MutableSeed[] = [];
let seedDir = '';
let placeholder = '';
const watcher = new StrayWatcher();

beforeAll(async () => {
  jazzer = (await import(join(REPO_ROOT, 'dist', 'verification', 'fuzz', 'jazzer.js'))) as Jazzer;
  seedDir = await mkdtemp(join(tmpdir(), 'qcow2-jazzer-seeds-'));
  await jazzer.writeSeedDir(seedDir, await corpusSeeds(CORPUS_DIR, () => {}));
  seeds = await jazzer.loadSeedDir(seedDir);
  process.env['QCOW2_JAZZER_SEEDS'] = seedDir;
  for (const t of TARGETS) {
    const entry = (await import(join(ENTRIES, `qcow2_${t.name}.js`))) as { fuzz: Fuzz };
    fuzzers.set(t.name, entry.fuzz);
  }
  placeholder = join(seedDir, 'placeholder');
  await writeFile(placeholder, new Uint8Array(0));
  watcher.install();
});

afterAll(async () => {
  watcher.uninstall();
  delete process.env['QCOW2_JAZZER_SEEDS'];
  if (seedDir) await rm(seedDir, { recursive: true, force: true });
});

/** What the Jazzer form did with the bytes: the findings it threw (none: it returned). */
async function verdict(fuzz: Fuzz, data: Uint8Array): Promise<Finding[]> {
  try {
    await fuzz(data);
    return [];
  } catch (err) {
    expect(err, 'a thrown finding, not another error').toBeInstanceOf(jazzer.JazzerFinding);
    const findings = (err as InstanceType<Jazzer['JazzerFinding']>).findings;
    expect(findings.length).toBeGreaterThan(0);
    return [...findings];
  }
}

const judged = (fs: readonly Finding[]) => fs.filter((f) => !NOT_HERE.has(f.oracle)).map((f) => f.signature).sort();

/** Byte equality of two images (expect's toEqual walks a typed array key by key: far too slow for megabytes). */
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function buffers(seed: number, n: number): Uint8Array[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(1 + (rng() % 96));
    for (let j = 0; j < data.length; j++) data[j] = rng() & 0xff;
    // Alternate the two forms: even first byte structure-aware, odd explicit.
    data[0] = (data[0]! & ~1) | (i & 1);
    return data;
  });
}

describe('Jazzer.js form', () => {
  it('fuzz/jazzer/ has one entry point per target, and no other', () => {
    const files = readdirSync(ENTRIES).filter((f) => f.endsWith('.js')).sort();
    expect(files).toEqual(TARGETS.map((t) => `qcow2_${t.name}.js`).sort());
    expect(seeds.length).toBeGreaterThan(10);
  });

  it('any bytes decode to a case, and an explicit case decodes back to its mutations', () => {
    for (const data of buffers(7, 2000)) {
      const { seed, mutations } = jazzer.decodeCase(data, seeds);
      expect(seeds.includes(seed)).toBe(true);
      expect(mutations.length).toBeLessThanOrEqual(16);
      // Re-encoded, the explicit form gives the same image (names and reasons are not kept).
      if ((data[0]! & 1) === 1) {
        const again = jazzer.decodeCase(jazzer.encodeCase(seeds.indexOf(seed), mutations), seeds);
        expect(again.seed === seed).toBe(true);
        expect(sameBytes(applyMutations(seed.bytes, again.mutations), applyMutations(seed.bytes, mutations))).toBe(true);
      }
    }
  });

  for (const t of TARGETS) {
    it(`${t.name}: ${BUFFERS_PER_TARGET} byte buffers give the oracles' verdict`, async () => {
      const fuzz = fuzzers.get(t.name)!;
      let cases = 0;
      for (const data of buffers(t.name.length * 1000 + t.name.charCodeAt(0), BUFFERS_PER_TARGET)) {
        const { seed, mutations } = jazzer.decodeCase(data, seeds);
        const expected = (await runCase(targetNamed(t.name)!, applyMutations(seed.bytes, mutations), placeholder, watcher)).findings;
        const got = await verdict(fuzz, data);
        expect(judged(got), `${t.name} on ${seed.name} with ${JSON.stringify(mutations)}`).toEqual(judged(expected));
        if (mutations.length > 0) cases++;
      }
      expect(cases).toBeGreaterThan(BUFFERS_PER_TARGET / 2);
    }, 120_000);
  }
});

describe('saved regressions as Jazzer.js inputs', () => {
  const regressions = loadRegressions(join(REPO_ROOT, 'test', 'fuzz', 'cases')).filter(
    (r) => targetNamed(r.target) !== undefined && !NOT_HERE.has(r.oracle),
  );

  // A known (unfixed) case, when the store has one, also shows a finding thrown as Jazzer.js sees it.
  it('the store holds fixed cases of the targets', () => {
    expect(regressions.some((r) => r.known === undefined)).toBe(true);
  });

  for (const r of regressions) {
    it(`${r.name}: ${r.known === undefined ? 'the oracles hold' : 'KNOWN BUG, the finding is thrown'}`, async () => {
      const data = jazzer.encodeRegression(r, seeds);
      expect(data, `seed image ${r.seed}`).toBeDefined();
      const { seed, mutations } = jazzer.decodeCase(data!, seeds);
      expect(seed.name).toBe(r.seed);
      expect(sameBytes(applyMutations(seed.bytes, mutations), applyMutations(seed.bytes, storedMutations(r)))).toBe(true);
      const got = await verdict(fuzzers.get(r.target)!, data!);
      if (r.known === undefined) expect(judged(got)).toEqual([]);
      else expect(got.map((f) => f.signature), `${r.name} no longer reproduces '${r.signature}'`).toContain(r.signature);
    }, 60_000);
  }
});
