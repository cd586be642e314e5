/**
 * The regression store: each finding, shrunk, saved as one small JSON file under test/fuzz/cases/
 * (the seed recipe, the target, the oracle and signature, and the mutations, each with a line a
 * person reads). test/fuzz/replay.test.ts replays them all; `known` marks a real bug not fixed yet
 * (the replay expects it to fail and says why).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMutation, type Mutation } from './mutation.js';
import type { Finding } from './oracle.js';

export interface Regression {
  name: string;
  /** The corpus recipe the image was made from (or `corpus:FILE` for a --corpus seed). */
  seed: string;
  target: string;
  oracle: Finding['oracle'];
  signature: string;
  detail: string;
  /** Each mutation with `text`, its readable form (ignored on replay). */
  mutations: Array<Mutation & { text?: string }>;
  /** A real bug not fixed yet: why, and who is on it. The replay then expects the finding. */
  known?: string;
}

export function regressionName(f: Finding, seed: string): string {
  const hash = createHash('sha256').update(f.signature).digest('hex').slice(0, 8);
  return `${f.target}-${f.oracle}-${seed.replace(/[^A-Za-z0-9-]+/g, '_')}-${hash}`;
}

export function loadRegressions(dir: string): Regression[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Regression);
}

export async function saveRegression(dir: string, f: Finding, seed: string, mutations: readonly Mutation[]): Promise<Regression> {
  const r: Regression = {
    name: regressionName(f, seed),
    seed,
    target: f.target,
    oracle: f.oracle,
    signature: f.signature,
    detail: f.detail,
    mutations: mutations.map((m) => ({ ...m, text: describeMutation(m) })),
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${r.name}.json`), `${JSON.stringify(r, null, 2)}\n`);
  return r;
}

/** The mutations of a stored case, without their readable lines. */
export function storedMutations(r: Regression): Mutation[] {
  return r.mutations.map(({ text: _text, ...m }) => m as Mutation);
}
