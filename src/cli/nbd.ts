/**
 * `qcow2 nbd [options] IMAGE`: serves an image over NBD with qemu-nbd's options and meanings where
 * implemented (src/nbd/ speaks the protocol; src/serve/ runs the requests).
 *
 * Where we differ from qemu-nbd, on purpose:
 * - A writable export of an image whose format was probed as raw is refused: give `-f raw` (or
 *   `-r`). Probing a raw disk a guest writes is the qemu probing hole: the guest can write a qcow2
 *   header, and the next probe would trust it (with a backing file name of the guest's choice).
 *   QEMU only warns and guards sector 0.
 * - `--cache` takes writeback (default), writethrough and unsafe (the O_DIRECT modes are refused,
 *   as for `qcow2 bench`).
 * - `-e 0` serves any number of clients (as qemu-nbd 5.2+); one client over the limit is answered
 *   with NBD_REP_ERR_POLICY and a message instead of waiting in the listen queue.
 * - TLS: `--tls-creds DIR` takes the directory itself (qemu-nbd takes the id of a
 *   `--object tls-creds-x509,dir=DIR`), same files (ca-cert.pem, server-cert.pem, server-key.pem,
 *   ca-crl.pem); client certificates are verified only with `--tls-verify-peer` (QEMU's
 *   verify-peer defaults to on). `--tls-psk FILE` takes QEMU's tls-creds-psk keys file
 *   (`username:hexkey` lines), over TLS 1.2. With either, TLS is required of every client.
 * - `-c DEV`, `--tls-authz` and `--tls-hostname` are not implemented.
 * `--object secret,...` and `--image-opts` (src/cli/image-opts.ts) serve an encrypted image (and its
 * encrypted backing chain), as qemu-nbd's.
 * The default address is qemu-nbd's: 0.0.0.0 (every IPv4 interface), port 10809.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createImage } from '../create/create.js';
import { type ImageFormat, openImage, probeFormat } from '../device/open.js';
import { type BlockDevice, isQcow2, type PersistentBitmap } from '../engine/types.js';
import { isQcow2Error, usage } from '../errors.js';
import { NBD_MAX_STRING_BYTES } from '../limits.js';
import { type ListenAddress, NbdServer } from '../nbd/server.js';
import { formatListing, listExports } from '../nbd/list.js';
import { loadClientTls, loadPsk, loadX509, type TlsConfig } from '../nbd/tls.js';
import type { LogSink } from '../serve/log.js';
import type { ServePolicy } from '../serve/request.js';
import { shutdownGracefully, watchTermination } from '../serve/shutdown.js';
import { commandLineError, onePositional, parse } from './args.js';
import { cacheMode, type CacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, type ImageArg, keyOptions, resolveImageArg } from './image-opts.js';

/** qemu-nbd's defaults: every IPv4 interface, the IANA port of NBD. */
export const DEFAULT_BIND = '0.0.0.0';
export const DEFAULT_PORT = 10809;

/** Set in the environment of the daemon started by --fork. */
const DAEMON_ENV = 'QCOW2_NBD_DAEMON';

export interface NbdCommand {
  /** -L: list the exports of the server at `listen` instead of serving (no image). */
  list: boolean;
  /** The image's file name (the operand, or file.filename of --image-opts). */
  image: string;
  /** The operand with the passphrases `--object` and `--image-opts` give (zeroed once the image is open). */
  operand: ImageArg;
  format: ImageFormat | undefined;
  exportName: string;
  description: string;
  listen: ListenAddress;
  readOnly: boolean;
  snapshot: boolean;
  /** -l: the internal snapshot to export (ID or name), read-only. */
  loadSnapshot: string | undefined;
  /** -B: the persistent bitmap to export as qemu:dirty-bitmap:NAME. */
  bitmap: string | undefined;
  shared: number;
  persistent: boolean;
  allocationDepth: boolean;
  cache: CacheMode;
  discard: ServePolicy['discard'];
  detectZeroes: NonNullable<ServePolicy['detectZeroes']>;
  untrusted: boolean;
  fork: boolean;
  pidFile: string | undefined;
  verbose: boolean;
  /** TLS credentials (--tls-creds DIR [--tls-verify-peer] or --tls-psk FILE): TLS required. */
  tls: { kind: 'x509'; dir: string; verifyPeer: boolean } | { kind: 'psk'; file: string } | undefined;
}

const OPTIONS = {
  format: { type: 'string', short: 'f' },
  'export-name': { type: 'string', short: 'x' },
  description: { type: 'string', short: 'D' },
  socket: { type: 'string', short: 'k' },
  bind: { type: 'string', short: 'b' },
  port: { type: 'string', short: 'p' },
  'read-only': { type: 'boolean', short: 'r' },
  snapshot: { type: 'boolean', short: 's' },
  'load-snapshot': { type: 'string', short: 'l' },
  shared: { type: 'string', short: 'e' },
  persistent: { type: 'boolean', short: 't' },
  'allocation-depth': { type: 'boolean', short: 'A' },
  cache: { type: 'string' },
  discard: { type: 'string' },
  'detect-zeroes': { type: 'string' },
  untrusted: { type: 'boolean' },
  fork: { type: 'boolean' },
  'pid-file': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  bitmap: { type: 'string', short: 'B' },
  list: { type: 'boolean', short: 'L' },
  'tls-creds': { type: 'string' },
  'tls-verify-peer': { type: 'boolean' },
  'tls-psk': { type: 'string' },
  ...IMAGE_OPTS_OPTIONS,
} as const;

function nonNegativeInt(text: string, what: string, max: number): number {
  if (!/^\d+$/.test(text)) throw usage(`nbd: Invalid ${what} '${text}'`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > max) throw usage(`nbd: Invalid ${what} '${text}' (0 to ${max})`);
  return n;
}

function stringOption(text: string, what: string): string {
  if (Buffer.byteLength(text) > NBD_MAX_STRING_BYTES) throw usage(`nbd: ${what} is longer than ${NBD_MAX_STRING_BYTES} bytes`);
  if (text.includes('\u0000')) throw usage(`nbd: ${what} contains a NUL character`);
  return text;
}

/** -l's argument: `ID_OR_NAME`, or qemu's `snapshot.id=ID` / `snapshot.name=NAME`. */
function snapshotName(text: string): string {
  if (!text.startsWith('snapshot.')) return text;
  const parts = text.split(',');
  if (parts.length !== 1) throw usage(`nbd: -l '${text}': give one of snapshot.id=ID or snapshot.name=NAME`);
  const m = /^snapshot\.(id|name)=(.+)$/.exec(text);
  if (!m?.[2]) throw usage(`nbd: -l '${text}': expected snapshot.id=ID or snapshot.name=NAME`);
  return m[2];
}

/** Reads the command line; every check happens before the image is opened. */
export function parseNbdArgs(args: string[]): NbdCommand {
  const { values, positionals } = parse(args, OPTIONS, 'nbd');
  const list = values.list === true;
  if (list && positionals.length > 0) throw commandLineError('nbd', '-L lists the exports of a server and takes no image');
  const format = values.format;
  if (format !== undefined && format !== 'raw' && format !== 'qcow2') throw usage(`nbd: -f must be 'raw' or 'qcow2', not '${format}'`);
  // As qemu-nbd: --image-opts makes the operand an option list (src/cli/image-opts.ts).
  const operand = resolveImageArg(list ? '' : onePositional(positionals, 'image', 'nbd'), values.object, values['image-opts'] === true && !list);
  const loadSnapshot = values['load-snapshot'] === undefined ? undefined : snapshotName(values['load-snapshot']);
  // As qemu-nbd: -l implies -r.
  const readOnly = values['read-only'] === true || loadSnapshot !== undefined;
  if (values['tls-creds'] !== undefined && values['tls-psk'] !== undefined) throw commandLineError('nbd', '--tls-creds and --tls-psk cannot be combined');
  if (values['tls-verify-peer'] === true && values['tls-creds'] === undefined) throw commandLineError('nbd', '--tls-verify-peer needs --tls-creds');
  const tls: NbdCommand['tls'] =
    values['tls-creds'] !== undefined
      ? { kind: 'x509', dir: values['tls-creds'], verifyPeer: values['tls-verify-peer'] === true }
      : values['tls-psk'] !== undefined
        ? { kind: 'psk', file: values['tls-psk'] }
        : undefined;
  if (values.socket !== undefined && (values.bind !== undefined || values.port !== undefined)) {
    throw commandLineError('nbd', '-k (unix socket) cannot be combined with -b or -p (TCP)');
  }
  const listen: ListenAddress =
    values.socket !== undefined
      ? { kind: 'unix', path: values.socket }
      : { kind: 'tcp', host: values.bind ?? DEFAULT_BIND, port: values.port === undefined ? DEFAULT_PORT : nonNegativeInt(values.port, 'port', 65535) };
  let discard: ServePolicy['discard'] = 'ignore';
  if (values.discard !== undefined) {
    if (values.discard === 'ignore' || values.discard === 'off') discard = 'ignore';
    else if (values.discard === 'unmap' || values.discard === 'on') discard = 'unmap';
    else throw usage(`nbd: Invalid discard option '${values.discard}' (ignore or unmap)`);
  }
  const detect = values['detect-zeroes'] ?? 'off';
  if (detect !== 'off' && detect !== 'on' && detect !== 'unmap') throw usage(`nbd: invalid --detect-zeroes '${detect}' (off, on or unmap)`);
  if (detect === 'unmap' && discard !== 'unmap') throw usage('nbd: --detect-zeroes=unmap needs --discard=unmap');
  return {
    list,
    image: operand.path,
    operand,
    format: operand.format ?? format,
    exportName: stringOption(values['export-name'] ?? '', 'the export name'),
    description: stringOption(values.description ?? '', 'the description'),
    listen,
    readOnly,
    snapshot: values.snapshot === true,
    loadSnapshot,
    bitmap: values.bitmap === undefined ? undefined : stringOption(values.bitmap, 'the bitmap name'),
    shared: values.shared === undefined ? 1 : nonNegativeInt(values.shared, 'shared device number', 2 ** 31 - 1),
    persistent: values.persistent === true,
    allocationDepth: values['allocation-depth'] === true,
    cache: values.cache === undefined ? 'writeback' : cacheMode('nbd', values.cache),
    discard,
    detectZeroes: detect,
    untrusted: values.untrusted === true,
    fork: values.fork === true,
    pidFile: values['pid-file'],
    verbose: values.verbose === true,
    tls,
  };
}

export async function nbd(args: string[], ctx: CliContext): Promise<number> {
  const cmd = parseNbdArgs(args);
  if (cmd.list) return listCommand(cmd, ctx);
  const daemon = process.env[DAEMON_ENV] === '1' && typeof process.send === 'function';
  if (cmd.fork && !daemon) {
    forgetSecrets(cmd.operand); // the daemon reads the command line again
    return daemonize(args, cmd, ctx);
  }
  if (!daemon) return serve(cmd, ctx, () => {});
  // The daemon: a failure before the socket listens goes to the waiting parent.
  let ready = false;
  try {
    return await serve(cmd, ctx, () => {
      ready = true;
      process.send?.({ ready: true });
      process.disconnect?.();
    });
  } catch (err) {
    if (!ready && process.connected) {
      const line = isQcow2Error(err) ? `qcow2 nbd: ${err.describe()}` : `qcow2 nbd: internal error: ${(err as Error).message}`;
      process.send?.({ error: line });
      process.disconnect?.();
    }
    throw err;
  }
}

/** Opens the export, serves it until the last client leaves (without -t) or a signal, and cleans up. */
async function serve(cmd: NbdCommand, ctx: CliContext, onReady: () => void): Promise<number> {
  const log: LogSink = (line) => ctx.stderr(`qcow2 nbd: ${line}\n`);
  const events: LogSink = cmd.verbose ? log : () => {};
  const cleanups: Array<() => Promise<unknown>> = [];
  // The credentials are checked before the image is opened: a bad file is a usage error at start.
  const tls: TlsConfig | undefined = cmd.tls === undefined ? undefined : cmd.tls.kind === 'x509' ? loadX509(cmd.tls.dir, cmd.tls.verifyPeer) : loadPsk(cmd.tls.file);
  try {
    let device: BlockDevice;
    try {
      device = await openExport(cmd, cleanups);
    } finally {
      forgetSecrets(cmd.operand);
    }
    let server: NbdServer;
    try {
      const bitmap = cmd.bitmap === undefined ? undefined : await exportedBitmap(device, cmd.bitmap, cmd.snapshot);
      server = await NbdServer.listen({
        device,
        exportName: cmd.exportName,
        description: cmd.description,
        listen: cmd.listen,
        shared: cmd.shared,
        persistent: cmd.persistent,
        allocationDepth: cmd.allocationDepth,
        ...(bitmap ? { bitmap } : {}),
        ...(tls ? { tls } : {}),
        policy: { discard: cmd.discard, writethrough: cmd.cache === 'writethrough', detectZeroes: cmd.detectZeroes },
        events,
        errors: log,
      });
    } catch (err) {
      await device.close().catch(() => {});
      throw err;
    }
    const termination = watchTermination((signal) => events(`${signal} again: still finishing the requests in flight`));
    try {
      if (cmd.pidFile !== undefined) {
        const pidFile = cmd.pidFile;
        await writeFile(pidFile, `${process.pid}\n`);
        cleanups.push(() => rm(pidFile, { force: true }));
      }
      events(
        `serving '${cmd.image}' as export '${cmd.exportName}' on ${server.address()}${device.readOnly ? ' (read-only)' : ''}${tls ? `, TLS required (${tls.describe})` : ''}`,
      );
      onReady();
      await Promise.race([server.idle, termination.signalled]);
      events(termination.signal() ? `${termination.signal()}: stopping` : 'the last client has gone: stopping');
      await shutdownGracefully(server, device);
    } finally {
      termination.remove();
      await server.stopAccepting().catch(() => {});
    }
    return 0;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}

/** The device to export: the image itself, or (-s) a temporary overlay over it. */
async function openExport(cmd: NbdCommand, cleanups: Array<() => Promise<unknown>>): Promise<BlockDevice> {
  const overlay = cmd.snapshot && !cmd.readOnly;
  const writable = !cmd.readOnly && !overlay;
  let format = cmd.format;
  if (format === undefined) {
    format = await probeFormat(cmd.image);
    if (format === 'raw' && writable) {
      throw usage(
        `nbd: '${cmd.image}' has no qcow2 header, so it would be exported as raw: a writable raw export needs -f raw (a guest could write a qcow2 header into a probed raw image, and the next probe would trust it); add -f raw, or -r for a read-only export`,
      );
    }
  }
  const driving = { ...(cmd.cache === 'unsafe' ? { noFlush: true } : {}) };
  const keys = keyOptions(cmd.operand);
  if (!overlay) {
    const snapshot = cmd.loadSnapshot === undefined ? {} : { snapshot: cmd.loadSnapshot };
    return openImage(cmd.image, { format, readOnly: cmd.readOnly, untrusted: cmd.untrusted, ...snapshot, ...driving, ...keys });
  }
  // -s: the image is opened read-only below a temporary overlay in $TMPDIR, removed at exit (an
  // encrypted image's data is written to the overlay in the clear, as qemu-nbd's -s writes it).
  const base = resolve(cmd.image);
  const probe = await openImage(base, { format, readOnly: true, untrusted: cmd.untrusted, ...keys });
  const size = probe.virtualSize;
  await probe.close();
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-nbd-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'overlay.qcow2');
  await createImage(path, { size, backingFile: base, backingFormat: format });
  return openImage(path, { format: 'qcow2', backing: { path: base, format }, untrusted: cmd.untrusted, ...driving, backingKeys: [keys.keySecret, ...(keys.backingKeys ?? [])] });
}

/** -L: the server's exports, printed as qemu-nbd -L prints them. */
async function listCommand(cmd: NbdCommand, ctx: CliContext): Promise<number> {
  const host = cmd.listen.kind === 'tcp' ? (cmd.listen.host === DEFAULT_BIND ? 'localhost' : cmd.listen.host) : undefined;
  // As qemu-nbd -L: with no -b, the server is looked for on this machine.
  const address: ListenAddress = cmd.listen.kind === 'tcp' ? { ...cmd.listen, host: host! } : cmd.listen;
  const tls = cmd.tls === undefined ? undefined : loadClientTls(cmd.tls, host);
  ctx.stdout(formatListing(await listExports(address, tls)));
  return 0;
}

/**
 * -B: the bitmap, from a qcow2 export: on a writable one, the bitmap the device keeps up to date
 * (its client's writes show at once, as with qemu-nbd); with -s, the image's under the overlay.
 */
async function exportedBitmap(device: BlockDevice, name: string, snapshot: boolean): Promise<PersistentBitmap> {
  const source = snapshot ? device.backing : device;
  if (!source || !isQcow2(source)) throw usage(`nbd: -B '${name}': a ${source?.format ?? device.format} image has no persistent bitmaps`);
  return source.readBitmap(name);
}

/** --fork: runs the server in a detached child and exits 0 once it listens (1 if it could not start). */
async function daemonize(args: string[], cmd: NbdCommand, ctx: CliContext): Promise<number> {
  const script = process.argv[1];
  if (script === undefined) throw usage('nbd: --fork: cannot find the program to start');
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, script, 'nbd', ...args.filter((a) => a !== '--fork')], {
    detached: true,
    stdio: ['ignore', 'ignore', cmd.verbose ? 'inherit' : 'ignore', 'ipc'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  const code = await new Promise<number>((resolveCode) => {
    child.on('message', (m: { ready?: boolean; error?: string }) => {
      if (m.error !== undefined) ctx.stderr(`${m.error}\n`);
      resolveCode(m.ready ? 0 : 1);
    });
    child.on('error', (err) => {
      ctx.stderr(`qcow2 nbd: --fork: ${err.message}\n`);
      resolveCode(1);
    });
    child.on('exit', (status) => {
      ctx.stderr(`qcow2 nbd: the server exited before it was ready (status ${status})\n`);
      resolveCode(1);
    });
  });
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  return code;
}
