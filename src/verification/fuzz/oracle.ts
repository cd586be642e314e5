/**
 * The oracles every case is judged by: only typed errors (a Qcow2Error with a code, and none that
 * wraps a TypeError, RangeError or Node's internal ERR_* errors), no unhandled rejection, uncaught
 * exception or process warning while it runs (main thread or workers), at most 2 s of processor
 * time (and 10 s of wall time, else it is abandoned as a hang) and 256 MiB of resident memory,
 * nothing written to a file opened read-only, every file it opened closed again, and the target's
 * own invariants (repair, read back).
 */
import { isQcow2Error } from '../../errors.js';
import { CaseEnv, type Target } from './targets.js';

export const CASE_TIME_LIMIT_MS = 2000;
/** A case still running after this long is abandoned (its files then fail every operation) and reported. */
const HANG_MS = 10_000;
export const CASE_MEMORY_LIMIT = 256 * 1024 * 1024;

export type Oracle =
  | 'untyped-error'
  | 'untyped-cause'
  | 'unhandled-rejection'
  | 'uncaught-exception'
  | 'warning'
  | 'slow'
  | 'hang'
  /** The process died (a V8 fatal error, an abort): seen only when the case runs in a child process. */
  | 'crash'
  | 'memory'
  | 'wrote-read-only'
  | 'handle-leak'
  | 'invariant'
  | 'qemu-refuses-we-open'
  | 'read-differs'
  | 'check-verdict';

export interface Finding {
  target: string;
  oracle: Oracle;
  detail: string;
  /** What makes two findings the same: target, oracle and the detail without its numbers. */
  signature: string;
}

export interface CaseResult {
  findings: Finding[];
  ms: number;
  /** Processor time the process spent meanwhile (all its threads), in ms. */
  cpuMs: number;
  /** The typed error's code when the target refused the image (not a finding). */
  refused?: string;
}

export function finding(target: string, oracle: Oracle, detail: string): Finding {
  const shape = detail
    .replace(/0x[0-9a-f]+/gi, '0x#')
    .replace(/\d+/g, '#')
    .replace(/'[^']*'/g, "'…'")
    .slice(0, 120);
  return { target, oracle, detail, signature: `${target}/${oracle}/${shape}` };
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${err.message}`;
  }
  return `non-Error thrown: ${String(err)}`;
}

/** An error that is not ours, inside one of ours (the check wraps whatever stopped it as an `io` failure). */
function untypedCause(err: unknown): unknown {
  let cause = (err as { cause?: unknown }).cause;
  for (let depth = 0; depth < 8 && cause !== undefined; depth++) {
    if (!isQcow2Error(cause)) {
      const code = (cause as { code?: unknown }).code;
      // An operating system's error (EIO, ENOSPC, ...) is what an `io` error is for.
      if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return undefined;
      return cause;
    }
    cause = cause.cause;
  }
  return undefined;
}

/** Unhandled rejections, uncaught exceptions and warnings, collected while cases run. */
export class StrayWatcher {
  private strays: Array<{ oracle: Oracle; detail: string }> = [];
  private readonly onRejection = (reason: unknown) => this.strays.push({ oracle: 'unhandled-rejection', detail: describeError(reason) });
  private readonly onException = (err: unknown) => this.strays.push({ oracle: 'uncaught-exception', detail: describeError(err) });
  private readonly onWarning = (w: Error) => this.strays.push({ oracle: 'warning', detail: `${w.name}: ${w.message}` });

  install(): void {
    process.on('unhandledRejection', this.onRejection);
    process.on('uncaughtException', this.onException);
    process.on('warning', this.onWarning);
  }

  uninstall(): void {
    process.off('unhandledRejection', this.onRejection);
    process.off('uncaughtException', this.onException);
    process.off('warning', this.onWarning);
  }

  take(): Array<{ oracle: Oracle; detail: string }> {
    const s = this.strays;
    this.strays = [];
    return s;
  }
}

const HANG = Symbol('hang');

/** Runs one target on one image and judges it. `watcher` must be installed. */
export async function runCase(target: Target, bytes: Uint8Array, placeholder: string, watcher: StrayWatcher): Promise<CaseResult> {
  const rssBefore = process.memoryUsage.rss();
  const env = new CaseEnv(bytes, placeholder);
  const findings: Finding[] = [];
  let refused: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  try {
    const out = await Promise.race([
      target.run(env),
      new Promise<typeof HANG>((resolve) => {
        timer = setTimeout(() => resolve(HANG), HANG_MS);
      }),
    ]);
    if (out === HANG) {
      env.state.abandoned = true;
      findings.push(finding(target.name, 'hang', 'a case that never returns'));
    }
    else for (const p of out) findings.push(finding(target.name, 'invariant', p));
  } catch (err) {
    if (!isQcow2Error(err)) findings.push(finding(target.name, 'untyped-error', describeError(err)));
    else {
      refused = err.code;
      const cause = untypedCause(err);
      if (cause !== undefined) findings.push(finding(target.name, 'untyped-cause', `${err.code} wrapping ${describeError(cause)}`));
    }
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  // Let rejections that nobody awaited surface before judging.
  await new Promise((resolve) => setImmediate(resolve));
  for (const r of env.reports) {
    if (!r.failure) continue;
    const cause = untypedCause(r.failure);
    if (cause !== undefined) findings.push(finding(target.name, 'untyped-cause', `check failure '${r.failure.code}' wrapping ${describeError(cause)}`));
  }
  for (const v of env.violations) findings.push(finding(target.name, 'wrote-read-only', v));
  const open = env.files.filter((f) => !f.closed);
  if (open.length > 0 && findings.every((f) => f.oracle !== 'hang')) {
    findings.push(finding(target.name, 'handle-leak', `${open.length} file(s) left open (${open.map((f) => `${f.role}${f.readOnly ? ' read-only' : ''}`).join(', ')})`));
  }
  // Processor time, not wall time: on a shared machine the wall clock measures the other users too.
  if (cpuMs > CASE_TIME_LIMIT_MS && findings.every((f) => f.oracle !== 'hang')) {
    findings.push(finding(target.name, 'slow', `took more than ${CASE_TIME_LIMIT_MS / 1000} s of processor time`));
  }
  const grown = process.memoryUsage.rss() - rssBefore;
  if (grown > CASE_MEMORY_LIMIT) findings.push(finding(target.name, 'memory', `resident memory grew by more than ${CASE_MEMORY_LIMIT >> 20} MiB`));
  for (const s of watcher.take()) findings.push(finding(target.name, s.oracle, s.detail));
  return { findings, ms, cpuMs, ...(refused !== undefined ? { refused } : {}) };
}
