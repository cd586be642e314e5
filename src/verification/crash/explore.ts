/**
 * Crash exploration: record a workload, then judge every crash state of its log (states.ts),
 * identical states once. Two states are judged at a time (one may wait on qemu-img while the other
 * runs our engine).
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { crashStates, durableAt, epochsOf, materialize, type CrashState, type StateOptions } from './states.js';
import { judge, type StateFiles } from './judge.js';
import type { FileRole } from '../../io/recording-file.js';
import type { Open, Workload } from './types.js';
import { expectation, record, scratchDir } from './workload.js';

export interface Failure {
  state: string;
  problems: string[];
}

export interface Exploration {
  workload: string;
  writes: number;
  flushes: number;
  epochs: number;
  /** Crash states generated, and how many distinct images they were. */
  states: number;
  distinct: number;
  /** Distinct states that needed repair (dirty bit), and that had leaks. */
  repaired: number;
  leaky: number;
  failures: Failure[];
}

export interface ExploreOptions extends StateOptions {
  /** Stop after this many failing states. */
  maxFailures?: number;
  /** Judge at most this many distinct states, drawn at random (seeded) from all of them (a sample, for `qcow2 verify`). */
  maxStates?: number;
}

export function describeState(s: CrashState): string {
  const torn = s.torn ? `, write #${s.torn.index} torn (sectors ${s.torn.sectors.map((b) => (b ? 1 : 0)).join('')})` : '';
  return `epoch ${s.epoch} (crash before log entry ${s.end}): landed [${s.landed.join(', ')}]${torn}`;
}

export async function explore(w: Workload, open: Open, opts: ExploreOptions = {}): Promise<Exploration> {
  const rec = await record(w, open);
  const epochs = epochsOf(rec.log);
  const out: Exploration = {
    workload: w.name,
    writes: rec.log.filter((o) => o.kind === 'write').length,
    flushes: rec.log.filter((o) => o.kind === 'flush').length,
    epochs: epochs.length,
    states: 0,
    distinct: 0,
    repaired: 0,
    leaky: 0,
    failures: [],
  };
  const maxFailures = opts.maxFailures ?? 3;
  const seen = new Set<string>();
  const dir = await scratchDir('qcow2-states-');
  const running = new Set<Promise<void>>();
  const durable = new Map<string, Uint8Array>();
  const durableFor = (epoch: number, file: FileRole, initial: Uint8Array): Uint8Array => {
    const key = `${epoch} ${file}`;
    let bytes = durable.get(key);
    if (!bytes) durable.set(key, (bytes = durableAt(initial, rec.log, epochs[epoch]!, file)));
    return bytes;
  };
  const dataName = w.dataFile;
  let states: Iterable<CrashState> = crashStates(rec.log, opts);
  if (opts.maxStates !== undefined) states = shuffled([...states], opts.seed ?? 1);
  try {
    for (const s of states) {
      if (out.failures.length >= maxFailures || (opts.maxStates !== undefined && out.distinct >= opts.maxStates)) break;
      out.states++;
      const image = materialize(durableFor(s.epoch, 'image', rec.initial), rec.log, s);
      const files: StateFiles = { image };
      const hash = createHash('sha1').update(image);
      if (rec.initialData && dataName !== undefined) {
        const data = materialize(durableFor(s.epoch, 'data-file', rec.initialData), rec.log, s, 'data-file');
        files.data = { name: dataName, bytes: data };
        hash.update(data);
      }
      const key = hash.digest('hex');
      if (seen.has(key)) continue;
      seen.add(key);
      out.distinct++;
      const name = `s${out.distinct}`;
      const task = judge(files, expectation(rec, s.end), dir, name).then(
        (v) => {
          if (v.dirty) out.repaired++;
          if (v.leaks > 0) out.leaky++;
          if (v.problems.length > 0) out.failures.push({ state: describeState(s), problems: v.problems });
        },
        (err: unknown) => void out.failures.push({ state: describeState(s), problems: [`the judge failed: ${(err as Error).message}`] }),
      );
      running.add(task);
      void task.finally(() => running.delete(task));
      if (running.size >= 2) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

/** A seeded Fisher-Yates shuffle. */
function shuffled<T>(items: T[], seed: number): T[] {
  let x = seed >>> 0 || 1;
  for (let i = items.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const j = x % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
