/**
 * What `qcow2 ublk` remembers about the devices it serves, in a run directory (default
 * /run/qcow2-ublk, or $QCOW2_UBLK_RUN_DIR): for device N, `N.json` (the image and how it is
 * served, for `list` and `recover`), `N.pid` (the server's process id) and `N.log` (a background
 * server's stderr: engine errors and events). The kernel is the authority on which devices exist
 * (GET_DEV_INFO); these files only add what it does not know.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DeviceRecord {
  id: number;
  pid: number;
  image: string;
  format: 'raw' | 'qcow2';
  readOnly: boolean;
  discard: 'ignore' | 'unmap';
  cache: 'writeback' | 'writethrough' | 'unsafe';
  untrusted: boolean;
  recoverable: boolean;
  queues: number;
  depth: number;
  /** The log file of a background server ('' in the foreground). */
  log: string;
  started: string;
}

export function runDir(): string {
  return process.env['QCOW2_UBLK_RUN_DIR'] || '/run/qcow2-ublk';
}

export function ensureRunDir(): string {
  const dir = runDir();
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

export function logPath(id: number): string {
  return join(runDir(), `${id}.log`);
}

export function writeRecord(record: DeviceRecord): void {
  const dir = ensureRunDir();
  const tmp = join(dir, `.${record.id}.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, join(dir, `${record.id}.json`));
  writeFileSync(join(dir, `${record.id}.pid`), `${record.pid}\n`);
}

export function readRecord(id: number): DeviceRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir(), `${id}.json`), 'utf8')) as DeviceRecord;
  } catch {
    return undefined;
  }
}

/** Removes the record and pid file of device `id` (the log stays for post-mortems unless `withLog`). */
export function removeRecord(id: number, withLog = false): void {
  const dir = runDir();
  rmSync(join(dir, `${id}.json`), { force: true });
  rmSync(join(dir, `${id}.pid`), { force: true });
  if (withLog) rmSync(join(dir, `${id}.log`), { force: true });
}

/** Ids with a record. */
export function recordedIds(): number[] {
  try {
    return readdirSync(runDir())
      .map((name) => /^(\d+)\.json$/.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number);
  } catch {
    return [];
  }
}

/** Ids of the ublk devices that exist now (their /dev/ublkcN nodes). */
export function presentIds(): number[] {
  try {
    return readdirSync('/dev')
      .map((name) => /^ublkc(\d+)$/.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number);
  } catch {
    return [];
  }
}

/** Whether process `pid` exists (and is not a zombie). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}
