/**
 * `qcow2 fuzz`'s command line: parsed here, with the product's other commands; the fuzzer itself is
 * the verification wing's (src/verification/fuzz/), loaded by the program entry (src/main.ts) only
 * when the command runs, as `qcow2 verify` is.
 */
import { usage } from '../errors.js';
import { commandLineError, parse } from './args.js';

export interface FuzzArgs {
  seed: number;
  runs?: number;
  timeMs?: number;
  /** Target names; empty: all. */
  targets: string[];
  corpus?: string;
  /** Only the corpus recipes whose name matches (a RegExp source). */
  seeds?: string;
  qemu: number;
  out?: string;
}

/** Cases run when neither --runs nor --time is given. */
export const DEFAULT_FUZZ_RUNS = 500;

function whole(value: string, name: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw usage(`fuzz: --${name} takes a whole number, not '${value}'`);
  return n;
}

/** `90`, `90s`, `5m`, `1h`, `500ms`. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value);
  if (!m) throw usage(`fuzz: --time takes a duration such as 30s, 5m or 1h, not '${value}'`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

export function parseFuzzArgs(args: string[]): FuzzArgs {
  const { values, positionals } = parse(
    args,
    {
      seed: { type: 'string' },
      runs: { type: 'string' },
      time: { type: 'string' },
      target: { type: 'string', multiple: true },
      corpus: { type: 'string' },
      seeds: { type: 'string' },
      qemu: { type: 'string' },
      out: { type: 'string' },
    },
    'fuzz',
  );
  if (positionals.length > 0) throw commandLineError('fuzz', `unexpected argument '${positionals[0]}'`);
  if (values.runs !== undefined && values.time !== undefined) throw commandLineError('fuzz', '--runs and --time exclude each other');
  const qemu = values.qemu === undefined ? 0 : whole(values.qemu, 'qemu');
  // Without --runs or --time, enough cases for the --qemu budget to be spent whole.
  const runs = values.runs === undefined ? (values.time === undefined ? Math.max(DEFAULT_FUZZ_RUNS, qemu) : undefined) : whole(values.runs, 'runs');
  return {
    seed: values.seed === undefined ? Date.now() % 2 ** 31 : whole(values.seed, 'seed'),
    ...(runs !== undefined ? { runs } : {}),
    ...(values.time !== undefined ? { timeMs: parseDuration(values.time) } : {}),
    targets: (values.target ?? []).flatMap((t) => t.split(',')).filter((t) => t !== ''),
    ...(values.corpus !== undefined ? { corpus: values.corpus } : {}),
    ...(values.seeds !== undefined ? { seeds: values.seeds } : {}),
    qemu,
    ...(values.out !== undefined ? { out: values.out } : {}),
  };
}
