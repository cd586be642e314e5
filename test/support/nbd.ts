/**
 * NBD servers for tests: ours (`qcow2 nbd`, run as `node bin/qcow2 nbd ...`) and the peer it is
 * judged against (`qemu-nbd`), started with the same logical options mapped to each tool's flags,
 * on a fresh unix socket in a temporary directory or on 127.0.0.1 with a free port (loopback
 * only, ever).
 *
 *   const srv = await startServer('qemu', image, { format: 'qcow2', exportName: 'disk' });
 *   await execa('qemu-img', ['info', srv.uri]);            // nbd+unix:///disk?socket=/tmp/…/nbd.sock
 *   await srv.stop();                                      // SIGTERM, wait, else SIGKILL and throw
 *
 * `startServer` resolves once the server's socket is listening (seen in /proc/net/unix or
 * /proc/net/tcp, so no probe connection is spent: with qemu-nbd's defaults one connection that
 * comes and goes would end the server) and its `--pid-file` has been written (the export is open). The server's stderr is collected (`srv.stderr()`), its
 * resident memory read from /proc/PID/status (`srv.memory()`). `stopAllServers()` in an afterEach
 * or afterAll stops whatever a test left running.
 *
 * The servers a parameterized test runs against are `NBD_SERVERS` (the environment variable of
 * that name, e.g. `NBD_SERVERS=qemu`, overrides the default list).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QCOW2_BIN, REPO } from './cli.js';

export type ServerKind = 'qemu' | 'ours';

/**
 * The servers parameterized tests run against: qemu-nbd (the peer) and ours. `NBD_SERVERS=qemu`
 * (or `ours`) narrows a run to one.
 */
export const NBD_SERVERS: readonly ServerKind[] = parseServers(process.env.NBD_SERVERS) ?? ['qemu', 'ours'];

function parseServers(text: string | undefined): ServerKind[] | undefined {
  if (!text) return undefined;
  const kinds = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (k !== 'qemu' && k !== 'ours') throw new Error(`NBD_SERVERS: unknown server ${k} (qemu, ours)`);
  return kinds as ServerKind[];
}

/** The logical options; each maps to the qemu-nbd option of the same meaning (ours takes the same). */
export interface ServeOptions {
  /** `-f FMT`: the image format, never probed when given. */
  format?: 'qcow2' | 'raw';
  /** `-r`: a read-only export. */
  readOnly?: boolean;
  /** `-x NAME`: the export name (default: the empty, default export). */
  exportName?: string;
  /** `-D TEXT`: the export description. */
  description?: string;
  /** `-e N`: how many clients at once. Default here: 8 (qemu-nbd's own default is 1). */
  shared?: number;
  /** `-t`: keep serving after the last client leaves. Default here: true (qemu-nbd's: false). */
  persistent?: boolean;
  /** `-A`: export the `qemu:allocation-depth` metadata context. */
  allocationDepth?: boolean;
  /** `-s`: writes go to a temporary overlay; the image is never touched. */
  snapshot?: boolean;
  /** `--cache=MODE`. */
  cache?: 'none' | 'writeback' | 'writethrough' | 'directsync' | 'unsafe';
  /** `--discard=MODE`: what a client's trim does (qemu-nbd's default: ignore). */
  discard?: 'ignore' | 'unmap';
  /** Listen on 127.0.0.1 with a free port instead of a unix socket. */
  tcp?: boolean;
  /** Further arguments, as given, before the image. */
  extraArgs?: string[];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerMemory {
  /** VmRSS: resident now, KiB. */
  rssKiB: number;
  /** VmHWM: the resident peak so far, KiB. */
  hwmKiB: number;
}

export interface NbdServer {
  readonly kind: ServerKind;
  readonly pid: number;
  /** `nbd+unix:///NAME?socket=PATH` or `nbd://127.0.0.1:PORT/NAME`. */
  readonly uri: string;
  /** Where raw clients connect: `{ path }` or `{ host, port }`. */
  readonly endpoint: Endpoint;
  readonly exportName: string;
  /** The command line it runs. */
  readonly argv: readonly string[];
  stderr(): string;
  /** Null while it runs. */
  exitStatus(): ExitStatus | null;
  memory(): Promise<ServerMemory>;
  /** SIGTERM, wait up to `timeoutMs` (default 15 s) for it to exit, else SIGKILL and throw. */
  stop(timeoutMs?: number): Promise<ExitStatus>;
}

export type Endpoint = { path: string } | { host: string; port: number };

const live = new Set<NbdServer>();

/** Stops every server still running (call it from afterEach/afterAll); throws the first failure. */
export async function stopAllServers(): Promise<void> {
  const errors: unknown[] = [];
  for (const s of [...live]) {
    try {
      await s.stop();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/** The argument vector (program first) that serves `image` with `opts` on `endpoint`. */
export function serverCommand(kind: ServerKind, image: string, opts: ServeOptions, endpoint: Endpoint, pidFile?: string): string[] {
  const args: string[] = [];
  if (opts.format) args.push('-f', opts.format);
  if (opts.readOnly) args.push('-r');
  if (opts.exportName !== undefined && opts.exportName !== '') args.push('-x', opts.exportName);
  if (opts.description !== undefined) args.push('-D', opts.description);
  args.push('-e', String(opts.shared ?? 8));
  if (opts.persistent ?? true) args.push('-t');
  if (opts.allocationDepth) args.push('-A');
  if (opts.snapshot) args.push('-s');
  if (opts.cache) args.push(`--cache=${opts.cache}`);
  if (opts.discard) args.push(`--discard=${opts.discard}`);
  if ('path' in endpoint) args.push('-k', endpoint.path);
  else args.push('-b', endpoint.host, '-p', String(endpoint.port));
  if (pidFile) args.push(`--pid-file=${pidFile}`);
  args.push(...(opts.extraArgs ?? []), image);
  return kind === 'qemu' ? ['qemu-nbd', ...args] : [process.execPath, QCOW2_BIN, 'nbd', ...args];
}

export function nbdUri(endpoint: Endpoint, exportName: string): string {
  const name = encodeURIComponent(exportName);
  if ('path' in endpoint) return `nbd+unix:///${name}?socket=${endpoint.path}`;
  return `nbd://${endpoint.host}:${endpoint.port}/${name}`;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const LOOPBACK = '127.0.0.1';

/** Starts a server and resolves when its socket listens. */
export async function startServer(kind: ServerKind, image: string, opts: ServeOptions = {}): Promise<NbdServer> {
  // A free port can be taken between our look and the server's bind: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(kind, image, opts);
    } catch (err) {
      if (!(opts.tcp && err instanceof AddressInUse && attempt < 4)) throw err;
    }
  }
}

class AddressInUse extends Error {}

async function startOnce(kind: ServerKind, image: string, opts: ServeOptions): Promise<NbdServer> {
  const dir = await mkdtemp(join(tmpdir(), `nbd-${kind}-`));
  const endpoint: Endpoint = opts.tcp ? { host: LOOPBACK, port: await freeLoopbackPort() } : { path: join(dir, 'nbd.sock') };
  const pidFile = join(dir, 'server.pid');
  const argv = serverCommand(kind, image, opts, endpoint, pidFile);
  const [program, ...args] = argv as [string, ...string[]];
  const child = spawn(program, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    if (stderr.length < 1 << 20) stderr += chunk;
  });
  let status: ExitStatus | null = null;
  let spawnError: Error | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      status = { code: null, signal: null };
      resolve(status);
    });
    child.once('exit', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  const exportName = opts.exportName ?? '';
  let stopping = false;
  const server: NbdServer = {
    kind,
    pid: child.pid ?? -1,
    uri: nbdUri(endpoint, exportName),
    endpoint,
    exportName,
    argv,
    stderr: () => stderr,
    exitStatus: () => status,
    memory: () => readMemory(child),
    async stop(timeoutMs = 15_000) {
      if (stopping) return exited;
      stopping = true;
      try {
        if (status) {
          // It ended on its own: fine only if it meant to (no -t, last client gone) and said 0.
          if (status.code !== 0) throw new Error(`${kind} NBD server ended by itself with ${describe(status)}:\n${stderr}`);
          return status;
        }
        child.kill('SIGTERM');
        const done = await Promise.race([exited, sleep(timeoutMs).then(() => null)]);
        if (done) return done;
        child.kill('SIGKILL');
        await exited;
        throw new Error(`${kind} NBD server (pid ${child.pid}) did not exit within ${timeoutMs} ms of SIGTERM: killed. stderr:\n${stderr}`);
      } finally {
        live.delete(server);
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  live.add(server);
  // Wait until the socket listens, or the server gives up.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (status) {
      live.delete(server);
      await rm(dir, { recursive: true, force: true });
      const why = spawnError ? String(spawnError) : describe(status);
      if (/address already in use/i.test(stderr)) throw new AddressInUse(stderr);
      throw new Error(`${argv.join(' ')}: the server ended before listening (${why}):\n${stderr}`);
    }
    // Listening is not enough: qemu-nbd binds before it opens the image (and may then fail to);
    // its pid file is written once the export is ready.
    if ((await listening(endpoint)) && (await pidWritten(pidFile))) return server;
    if (Date.now() > deadline) {
      await server.stop().catch(() => {});
      throw new Error(`${argv.join(' ')}: not listening after 30 s:\n${stderr}`);
    }
    await sleep(20);
  }
}

function describe(s: ExitStatus): string {
  return s.signal ? `signal ${s.signal}` : `exit status ${s.code}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a listening socket is bound there (the kernel then completes connections to it). */
async function listening(endpoint: Endpoint): Promise<boolean> {
  if ('path' in endpoint) {
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON (listening).
    const table = await readFile('/proc/net/unix', 'utf8');
    return table.split('\n').some((line) => {
      const f = line.trim().split(/\s+/);
      return f[7] === endpoint.path && (parseInt(f[3] ?? '0', 16) & 0x10000) !== 0;
    });
  }
  // sl local_address rem_address st ...; 0100007F:PORT for 127.0.0.1, st 0A = LISTEN.
  const table = await readFile('/proc/net/tcp', 'utf8');
  const local = `0100007F:${endpoint.port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === local && f[3] === '0A';
  });
}

async function pidWritten(path: string): Promise<boolean> {
  try {
    return /^\d+\s*$/.test(await readFile(path, 'utf8'));
  } catch {
    return false;
  }
}

async function readMemory(child: ChildProcess): Promise<ServerMemory> {
  const text = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`/proc/${child.pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}
