/**
 * `qcow2 ublk add|list|del|recover`: serves an image as a Linux block device, /dev/ublkbN, through
 * the kernel's ublk driver (src/ublk/ talks to the driver; src/serve/ runs the requests).
 *
 *   add [-f FMT] [-r] [--queues N] [--depth N] [--id N] [--discard=unmap|ignore] [--cache=MODE]
 *       [--recoverable] [--untrusted] [--foreground] [-v] [--object OBJ] [--image-opts] IMAGE
 *       Prints /dev/ublkbN as the last line of stdout once the device is live. Without
 *       --foreground the server runs detached: its stderr goes to /run/qcow2-ublk/N.log, its pid to
 *       N.pid, what it serves to N.json ($QCOW2_UBLK_RUN_DIR instead of /run/qcow2-ublk).
 *   list [--output=human|json]   every ublk device the kernel has, with what we know of it
 *   del ID | --all               SIGTERM to the device's server, which stops the device, finishes
 *                                the requests in flight, flushes and closes the image clean, and
 *                                deletes the device; waits for all of that. A device whose server
 *                                died is stopped and deleted here (its image was not closed clean).
 *   recover [--foreground] ID    a new server for a device added with --recoverable whose server
 *                                died (the device is quiesced: its users wait); same image, same options
 *                                (not the passphrase of an encrypted image: it is not kept, so such
 *                                an image fails to open with QEMU's "Parameter 'encrypt.key-secret'
 *                                is required for cipher")
 *
 * SIGTERM or SIGINT to a server: STOP_DEV, the requests in flight finish, flush, close, DEL_DEV, exit 0.
 * Defaults: discard=unmap (a block device that says it can discard frees space: fstrim works;
 * --discard=ignore announces no discard at all), cache=writeback (FLUSH and FUA reach the image),
 * one queue of 128 tags, requests up to 512 KiB.
 * A writable device of an image whose format was probed as raw is refused, as for `qcow2 nbd`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ImageFormat, openImage, probeFormat } from '../device/open.js';
import type { BlockDevice } from '../engine/types.js';
import { isQcow2Error, type Qcow2Error, unsupported, usage } from '../errors.js';
import { ErrorLog, type LogSink } from '../serve/log.js';
import { DEFAULT_POLICY } from '../serve/request.js';
import { shutdownGracefully, watchTermination } from '../serve/shutdown.js';
import * as control from '../ublk/control.js';
import { type DeviceRecord, ensureRunDir, logPath, presentIds, processAlive, readRecord, recordedIds, removeRecord, runDir, writeRecord } from '../ublk/registry.js';
import { UBLK_DEFAULT_DEPTH, UblkServer } from '../ublk/server.js';
import { featureNames, MAX_NR_QUEUES, MAX_QUEUE_DEPTH, stateName } from '../ublk/uapi.js';
import { commandLineError, outputFormat, parse } from './args.js';
import { cacheMode, type CacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, type ImageArg, keyOptions, resolveImageArg } from './image-opts.js';

/** Set in the environment of a background server started by `add` / `recover`. */
const DAEMON_ENV = 'QCOW2_UBLK_DAEMON';
/** How long `del` waits for a server to finish (a flush of a large dirty cache can take a while). */
const DEL_WAIT_MS = 180_000;

export interface UblkAddCommand {
  /** The image's file name (the operand, or file.filename of --image-opts). */
  image: string;
  /** add: the operand with the passphrases `--object` and `--image-opts` give (zeroed once the image is open). */
  operand?: ImageArg;
  format: ImageFormat | undefined;
  readOnly: boolean;
  queues: number;
  depth: number;
  id: number | undefined;
  discard: 'ignore' | 'unmap';
  cache: CacheMode;
  recoverable: boolean;
  untrusted: boolean;
  foreground: boolean;
  verbose: boolean;
}

const ADD_OPTIONS = {
  format: { type: 'string', short: 'f' },
  'read-only': { type: 'boolean', short: 'r' },
  queues: { type: 'string' },
  depth: { type: 'string' },
  id: { type: 'string' },
  discard: { type: 'string' },
  cache: { type: 'string' },
  recoverable: { type: 'boolean' },
  untrusted: { type: 'boolean' },
  foreground: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  ...IMAGE_OPTS_OPTIONS,
} as const;

function intOption(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw usage(`ublk: invalid ${what} '${text}'`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usage(`ublk: invalid ${what} '${text}' (${min} to ${max})`);
  return n;
}

export function parseUblkAdd(args: string[]): UblkAddCommand {
  const { values, positionals } = parse(args, ADD_OPTIONS, 'ublk');
  if (positionals.length !== 1 || positionals[0] === undefined) throw commandLineError('ublk', `add: expected exactly one image, got ${positionals.length}`);
  const format = values.format;
  if (format !== undefined && format !== 'raw' && format !== 'qcow2') throw usage(`ublk: -f must be 'raw' or 'qcow2', not '${format}'`);
  const operand = resolveImageArg(positionals[0], values.object, values['image-opts'] === true);
  let discard: 'ignore' | 'unmap' = 'unmap';
  if (values.discard !== undefined) {
    if (values.discard === 'ignore' || values.discard === 'off') discard = 'ignore';
    else if (values.discard === 'unmap' || values.discard === 'on') discard = 'unmap';
    else throw usage(`ublk: invalid discard option '${values.discard}' (unmap or ignore)`);
  }
  return {
    image: operand.path,
    operand,
    format: operand.format ?? format,
    readOnly: values['read-only'] === true,
    queues: values.queues === undefined ? 1 : intOption(values.queues, 'number of queues', 1, MAX_NR_QUEUES),
    depth: values.depth === undefined ? UBLK_DEFAULT_DEPTH : intOption(values.depth, 'queue depth', 1, MAX_QUEUE_DEPTH),
    id: values.id === undefined ? undefined : intOption(values.id, 'device id', 0, 2 ** 20 - 1),
    discard,
    cache: values.cache === undefined ? 'writeback' : cacheMode('ublk', values.cache),
    recoverable: values.recoverable === true,
    untrusted: values.untrusted === true,
    foreground: values.foreground === true,
    verbose: values.verbose === true,
  };
}

/** `qcow2 ublk SUBCOMMAND ...` */
export async function ublk(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add':
      return add(parseUblkAdd(rest), rest, ctx);
    case 'list':
      return list(rest, ctx);
    case 'del':
      return del(rest, ctx);
    case 'recover':
      return recover(rest, ctx);
    default:
      throw commandLineError('ublk', sub === undefined ? 'expected add, list, del or recover' : `unknown subcommand '${sub}' (add, list, del or recover)`);
  }
}

// ---------------------------------------------------------------------------------------------
// add / recover: the server
// ---------------------------------------------------------------------------------------------

interface ServeJob {
  cmd: UblkAddCommand;
  /** recover: the id of the quiesced device to take over. */
  recoverId?: number;
}

async function add(cmd: UblkAddCommand, _args: string[], ctx: CliContext): Promise<number> {
  return startServer({ cmd }, ctx);
}

async function startServer(job: ServeJob, ctx: CliContext): Promise<number> {
  const daemon = process.env[DAEMON_ENV] === '1' && typeof process.send === 'function';
  // A kernel without ublk is one line here, before any server is started.
  await control.ublkControl();
  if (!job.cmd.foreground && !daemon) return daemonize(job, ctx);
  if (!daemon) {
    return serve(job, ctx, (server) => ctx.stdout(`${server.blockPath}\n`));
  }
  let ready = false;
  try {
    return await serve(job, ctx, (server) => {
      ready = true;
      process.send?.({ ready: true, path: server.blockPath, id: server.devId });
      process.disconnect?.();
    });
  } catch (err) {
    if (!ready && process.connected) {
      process.send?.({ error: `qcow2 ublk: ${describe(err)}` });
      process.disconnect?.();
    }
    throw err;
  }
}

function describe(err: unknown): string {
  return isQcow2Error(err) ? err.describe() : `internal error: ${(err as Error).message}`;
}

async function openDevice(cmd: UblkAddCommand): Promise<BlockDevice> {
  let format = cmd.format;
  if (format === undefined) {
    format = await probeFormat(cmd.image);
    if (format === 'raw' && !cmd.readOnly) {
      throw usage(
        `ublk: '${cmd.image}' has no qcow2 header, so it would be served as raw: a writable raw device needs -f raw (a guest could write a qcow2 header into a probed raw image, and the next probe would trust it); add -f raw, or -r`,
      );
    }
  }
  try {
    return await openImage(cmd.image, {
      format,
      readOnly: cmd.readOnly,
      untrusted: cmd.untrusted,
      ...(cmd.cache === 'unsafe' ? { noFlush: true } : {}),
      ...(cmd.operand ? keyOptions(cmd.operand) : {}),
    });
  } finally {
    forgetSecrets(cmd.operand);
  }
}

/** Opens the image, adds (or recovers) the device, serves it until a signal or its removal, then cleans up. */
async function serve(job: ServeJob, ctx: CliContext, onReady: (server: UblkServer) => void): Promise<number> {
  const { cmd } = job;
  const daemon = process.env[DAEMON_ENV] === '1';
  const log: LogSink = (line) => ctx.stderr(`qcow2 ublk: ${new Date().toISOString()} ${line}\n`);
  const events: LogSink = cmd.verbose || daemon ? log : () => {};
  // Fail early, before the image is opened, on a kernel without ublk.
  await control.ublkControl();
  const device = await openDevice(cmd);
  const options = {
    device,
    queues: cmd.queues,
    depth: cmd.depth,
    policy: { ...DEFAULT_POLICY, discard: cmd.discard, writethrough: cmd.cache === 'writethrough' },
    errors: new ErrorLog(log),
    events,
    recoverable: cmd.recoverable,
    ...(cmd.id !== undefined ? { devId: cmd.id } : {}),
  };
  // Signals are taken from here on: one during the start stops the device as soon as it is live
  // (instead of killing the process and leaving a dead device behind).
  const termination = watchTermination((signal) => events(`${signal} again: still finishing the requests in flight`));
  let server: UblkServer;
  try {
    server = job.recoverId !== undefined ? await UblkServer.recover(job.recoverId, options) : await UblkServer.start(options);
  } catch (err) {
    termination.remove();
    await device.close().catch(() => {});
    throw err;
  }
  const id = server.devId;
  try {
    const record: DeviceRecord = {
      id,
      pid: process.pid,
      image: resolve(cmd.image),
      format: device.format,
      readOnly: device.readOnly,
      discard: cmd.discard,
      cache: cmd.cache,
      untrusted: cmd.untrusted,
      recoverable: cmd.recoverable,
      queues: server.info.nrHwQueues,
      depth: server.info.queueDepth,
      log: daemon ? logPath(id) : '',
      started: new Date().toISOString(),
    };
    try {
      writeRecord(record);
    } catch (err) {
      events(`cannot write the record of device ${id} in ${runDir()}: ${(err as Error).message} (list and del will know less)`);
    }
    events(`serving '${cmd.image}' (${device.format}${device.readOnly ? ', read-only' : ''}) as ${server.blockPath}, pid ${process.pid}`);
    onReady(server);
    await Promise.race([termination.signalled, server.ended]);
    events(termination.signal() ? `${termination.signal()}: stopping ${server.blockPath}` : `${server.blockPath} was stopped from outside: finishing`);
    await shutdownGracefully(server, device);
    await server.delete().catch((err: unknown) => {
      if (control.controlErrno(err) !== 'ENODEV') throw err;
    });
    events(`device ${id} deleted; image closed (${server.requests.total} requests, ${server.requests.failed} failed)`);
    removeRecord(id);
    return 0;
  } finally {
    termination.remove();
  }
}

/** Runs the server detached, its stderr in the run directory's log; prints /dev/ublkbN once live. */
async function daemonize(job: ServeJob, ctx: CliContext): Promise<number> {
  forgetSecrets(job.cmd.operand); // the daemon reads the command line again
  const script = process.argv[1];
  if (script === undefined) throw usage('ublk: cannot find the program to start in the background');
  const dir = ensureRunDir();
  const pending = join(dir, `.starting-${process.pid}-${Date.now()}.log`);
  const logFd = openSync(pending, 'a', 0o644);
  let child: ChildProcess;
  try {
    // The same command line again (whatever the entry script), with the daemon marker.
    child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ['ignore', 'ignore', logFd, 'ipc'],
      env: { ...process.env, [DAEMON_ENV]: '1' },
    });
  } finally {
    closeSync(logFd);
  }
  const outcome = await new Promise<{ path?: string; id?: number; error?: string }>((resolveOutcome) => {
    child.on('message', (m: { ready?: boolean; path?: string; id?: number; error?: string }) => {
      resolveOutcome(m.ready ? { path: m.path ?? '', id: m.id ?? -1 } : { error: m.error ?? 'qcow2 ublk: the server failed to start' });
    });
    child.on('error', (err) => resolveOutcome({ error: `qcow2 ublk: cannot start the server: ${err.message}` }));
    child.on('exit', (status) => resolveOutcome({ error: `qcow2 ublk: the server exited before the device was live (status ${status}); see ${pending}` }));
  });
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  if (outcome.error !== undefined || outcome.id === undefined) {
    ctx.stderr(`${outcome.error}\n`);
    return 1;
  }
  try {
    renameSync(pending, logPath(outcome.id));
  } catch {
    // the log stays under its first name
  }
  ctx.stdout(`${outcome.path}\n`);
  return 0;
}

async function recover(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { foreground: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } }, 'ublk');
  if (positionals.length !== 1 || positionals[0] === undefined) throw commandLineError('ublk', 'recover: expected exactly one device id');
  const id = intOption(positionals[0], 'device id', 0, 2 ** 20 - 1);
  const record = readRecord(id);
  if (record === undefined) throw usage(`ublk: recover: no record of device ${id} in ${runDir()} (was it added by qcow2 ublk add --recoverable?)`);
  if (processAlive(record.pid) && record.pid !== process.pid) throw usage(`ublk: recover: the server of device ${id} (pid ${record.pid}) is still running`);
  const cmd: UblkAddCommand = {
    image: record.image,
    format: record.format,
    readOnly: record.readOnly,
    queues: record.queues,
    depth: record.depth,
    id,
    discard: record.discard,
    cache: record.cache,
    recoverable: true,
    untrusted: record.untrusted,
    foreground: values.foreground === true,
    verbose: values.verbose === true,
  };
  return startServer({ cmd, recoverId: id }, ctx);
}

// ---------------------------------------------------------------------------------------------
// list / del
// ---------------------------------------------------------------------------------------------

interface ListedDevice {
  id: number;
  state: string;
  queues: number;
  depth: number;
  maxIoBytes: number;
  pid: number;
  serverAlive: boolean;
  device: string;
  image: string | null;
  format: string | null;
  readOnly: boolean | null;
  flags: string[];
  log: string | null;
}

async function describeDevice(id: number): Promise<ListedDevice | undefined> {
  let info;
  try {
    info = await control.getDevInfo(id);
  } catch (err) {
    if (control.controlErrno(err) === 'ENODEV') return undefined;
    throw err;
  }
  const record = readRecord(id);
  return {
    id,
    state: stateName(info.state),
    queues: info.nrHwQueues,
    depth: info.queueDepth,
    maxIoBytes: info.maxIoBufBytes,
    pid: info.ublksrvPid,
    serverAlive: processAlive(info.ublksrvPid),
    device: `/dev/ublkb${id}`,
    image: record?.image ?? null,
    format: record?.format ?? null,
    readOnly: record?.readOnly ?? null,
    flags: featureNames(info.flags),
    log: record?.log || null,
  };
}

async function list(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { output: { type: 'string' } }, 'ublk');
  if (positionals.length > 0) throw commandLineError('ublk', 'list: takes no operands');
  const output = outputFormat(values.output, 'ublk');
  await control.ublkControl();
  const ids = [...new Set([...presentIds(), ...recordedIds()])].sort((a, b) => a - b);
  const devices: ListedDevice[] = [];
  for (const id of ids) {
    const d = await describeDevice(id);
    if (d) devices.push(d);
    else if (readRecord(id) && !processAlive(readRecord(id)?.pid ?? 0)) removeRecord(id); // a stale record
  }
  if (output === 'json') {
    ctx.stdout(`${JSON.stringify(devices, null, 2)}\n`);
    return 0;
  }
  if (devices.length === 0) {
    ctx.stdout('no ublk devices\n');
    return 0;
  }
  const rows = [['ID', 'DEVICE', 'STATE', 'QUEUES', 'DEPTH', 'PID', 'IMAGE']];
  for (const d of devices) {
    const pid = d.pid > 0 ? `${d.pid}${d.serverAlive ? '' : ' (gone)'}` : '-';
    const image = d.image === null ? '-' : `${d.image} (${d.format}${d.readOnly ? ', read-only' : ''})`;
    rows.push([String(d.id), d.device, d.state, String(d.queues), String(d.depth), pid, image]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) ctx.stdout(`${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}\n`);
  return 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function del(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { all: { type: 'boolean' } }, 'ublk');
  if (values.all === true && positionals.length > 0) throw commandLineError('ublk', 'del: give an id or --all, not both');
  if (values.all !== true && (positionals.length !== 1 || positionals[0] === undefined)) throw commandLineError('ublk', 'del: expected one device id, or --all');
  await control.ublkControl();
  const ids = values.all === true ? [...new Set([...presentIds(), ...recordedIds()])].sort((a, b) => a - b) : [intOption(positionals[0] as string, 'device id', 0, 2 ** 20 - 1)];
  let failed: Qcow2Error | undefined;
  for (const id of ids) {
    try {
      const note = await deleteOne(id, values.all === true);
      if (note) ctx.stderr(`qcow2 ublk: ${note}\n`);
    } catch (err) {
      if (!isQcow2Error(err)) throw err;
      ctx.stderr(`qcow2 ublk: ${err.describe()}\n`);
      failed ??= err;
    }
  }
  return failed ? 1 : 0;
}

/** Deletes device `id`; returns a note for the user, if any. */
async function deleteOne(id: number, quietIfMissing: boolean): Promise<string | undefined> {
  let info;
  try {
    info = await control.getDevInfo(id);
  } catch (err) {
    if (control.controlErrno(err) !== 'ENODEV') throw err;
    const record = readRecord(id);
    if (record && !processAlive(record.pid)) removeRecord(id);
    if (quietIfMissing) return undefined;
    throw usage(`ublk: del: there is no ublk device ${id}`);
  }
  const record = readRecord(id);
  const pids = [...new Set([info.ublksrvPid, record?.pid ?? -1])].filter((pid) => pid > 0 && pid !== process.pid && processAlive(pid));
  // A device another program serves (no record of ours names its server) is not ours to stop.
  if (pids.length > 0 && (record === undefined || !pids.includes(record.pid))) {
    throw usage(`ublk: del: device ${id} is served by pid ${pids.join(', ')}, which qcow2 ublk did not start (no record in ${runDir()}): not stopping it`);
  }
  if (pids.length > 0) {
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + DEL_WAIT_MS;
    while (pids.some(processAlive)) {
      if (Date.now() > deadline) throw unsupported(`ublk: del: the server of device ${id} (pid ${pids.join(', ')}) did not finish in ${DEL_WAIT_MS / 1000} s`);
      await sleep(50);
    }
  }
  // The server deleted the device on its way out; if it had died (or was not ours), we do it.
  let stillThere = true;
  try {
    await control.getDevInfo(id);
  } catch (err) {
    if (control.controlErrno(err) !== 'ENODEV') throw err;
    stillThere = false;
  }
  let note: string | undefined;
  if (stillThere) {
    await control.stopDev(id).catch(() => {});
    await control.delDev(id);
    if (pids.length === 0) note = `device ${id} had no running server: deleted; its image was not closed clean (run qcow2 check -r on it)`;
  }
  removeRecord(id);
  rmSync(join(runDir(), `${id}.pid`), { force: true });
  return note;
}
