/**
 * Where a server says what happened: a line sink (stderr in the CLI, an array in tests), and the
 * engine error log, which reports each distinct typed error once. A request that meets a corrupt
 * L2 entry fails with EIO every time a client reads there; the log says so once, not once per
 * request, and a client cannot fill the server's stderr (or memory) with repeats.
 */
import { isQcow2Error } from '../errors.js';

/** Receives one line of text, without a trailing newline. */
export type LogSink = (line: string) => void;

/** A sink that drops everything (a server's events without -v). */
export const silent: LogSink = () => {};

/** Distinct errors remembered; past this, one line says that later ones are not reported. */
const MAX_DISTINCT = 1024;

/** The typed error's identity: the same failure at the same place is one entry. */
function errorKey(err: unknown): string {
  if (isQcow2Error(err)) return `${err.code}\u0000${err.field ?? ''}\u0000${String(err.offset ?? '')}\u0000${err.message}`;
  if (err instanceof Error) return `${err.name}\u0000${(err as { code?: unknown }).code ?? ''}\u0000${err.message}`;
  return `other\u0000${String(err)}`;
}

function describeError(err: unknown): string {
  if (isQcow2Error(err)) return err.describe();
  if (err instanceof Error) return `internal error: ${err.message}`;
  return `internal error: ${String(err)}`;
}

export class ErrorLog {
  private readonly seen = new Set<string>();
  private full = false;

  constructor(private readonly sink: LogSink) {}

  /** Reports `err` (met while doing `what`) unless the same error was reported before. */
  report(err: unknown, what: string): void {
    const key = errorKey(err);
    if (this.seen.has(key)) return;
    if (this.seen.size >= MAX_DISTINCT) {
      if (!this.full) this.sink(`engine errors: more than ${MAX_DISTINCT} distinct errors; later ones are not reported`);
      this.full = true;
      return;
    }
    this.seen.add(key);
    this.sink(`engine error (${what}): ${describeError(err)}`);
  }

  /** How many distinct errors were reported. */
  get distinct(): number {
    return this.seen.size;
  }
}
