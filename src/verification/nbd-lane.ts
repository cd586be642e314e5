/**
 * The NBD lane: the campaign's op sequences run through a loopback NBD connection. The image is
 * served by `qcow2 nbd` (the real program, a process of its own, on a unix socket, with
 * --discard=unmap so that a discard reaches the engine) and driven by a real client, libnbd (a
 * long-running Python process, `import nbd`, speaking a line protocol on its stdin and stdout):
 * read, write, writeZeroes (NO_HOLE unless unmap is asked), discard (trim) and flush go over the
 * wire. What NBD cannot express (mappings, compressed writes, snapshots, resize, refcounts) is done
 * offline: the client says goodbye, the server is stopped (SIGTERM, exit status 0 required), the
 * optimized engine opens the image, does it, closes it, and the next NBD request starts the server
 * again. close() stops the server the same way, so the final image is the server's, judged like
 * every other lane's.
 *
 * Requests are taken one at a time (the lane is not concurrent): the client answers in order.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BitmapEdit, DeviceCapabilities, Extent, OpenOptions, PersistentBitmap, Qcow2Device, SnapshotInfo, StatusExtent, WriteOptions, WriteZeroesOptions } from '../engine/types.js';
import { openOptimized } from '../optimized/open.js';
import { unsupported } from '../errors.js';

const QCOW2_BIN = fileURLToPath(new URL('../../bin/qcow2', import.meta.url));

/** The client: one request a line in, one answer a line out ("ok [base64]" or "err MESSAGE"). */
const CLIENT = String.raw`
import sys, base64, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
print("ok", h.get_size(), flush=True)
for line in sys.stdin:
    p = line.split()
    try:
        op = p[0]
        out = ""
        if op == "R":
            out = base64.b64encode(h.pread(int(p[2]), int(p[1]))).decode()
        elif op == "W":
            h.pwrite(base64.b64decode(p[2]), int(p[1]))
        elif op == "Z":
            h.zero(int(p[2]), int(p[1]), 0 if p[3] == "1" else nbd.CMD_FLAG_NO_HOLE)
        elif op == "T":
            h.trim(int(p[2]), int(p[1]))
        elif op == "F":
            h.flush()
        elif op == "Q":
            h.shutdown()
            print("ok", flush=True)
            break
        print("ok", out, flush=True)
    except nbd.Error as e:
        print("err", str(e).replace("\n", " "), flush=True)
`;

class Session {
  private lines: string[] = [];
  private waiters: Array<(line: string | null) => void> = [];
  private buffer = '';
  private ended = false;
  private serverStderr = '';
  private serverExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private clientExit: Promise<unknown>;

  private constructor(
    private readonly server: ChildProcess,
    private readonly client: ChildProcess,
    private readonly dir: string,
  ) {
    server.stderr!.setEncoding('utf8');
    server.stderr!.on('data', (c: string) => {
      if (this.serverStderr.length < 65536) this.serverStderr += c;
    });
    this.serverExit = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
    this.clientExit = new Promise((resolve) => client.once('exit', resolve));
    client.stdout!.setEncoding('utf8');
    client.stdout!.on('data', (c: string) => {
      this.buffer += c;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    client.stdout!.on('end', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
    client.stderr!.resume();
  }

  static async start(path: string): Promise<{ session: Session; size: number }> {
    const dir = await mkdtemp(join(tmpdir(), 'qcow2-nbd-lane-'));
    const sock = join(dir, 'nbd.sock');
    const pidFile = join(dir, 'server.pid');
    const server = spawn(process.execPath, [QCOW2_BIN, 'nbd', '-f', 'qcow2', '-k', sock, '-e', '1', '-t', '--discard=unmap', `--pid-file=${pidFile}`, path], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    server.stderr!.setEncoding('utf8');
    const onData = (c: string) => (stderr += c);
    server.stderr!.on('data', onData);
    let exited = false;
    server.once('exit', () => (exited = true));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`nbd lane: qcow2 nbd ended before serving ${path}: ${stderr}`);
      }
      const ready = await readFile(pidFile, 'utf8').then((t) => /^\d+\s*$/.test(t), () => false);
      if (ready && (await stat(sock).then(() => true, () => false))) break;
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        throw new Error(`nbd lane: qcow2 nbd not serving ${path} after 30 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    server.stderr!.off('data', onData);
    const client = spawn('python3', ['-c', CLIENT, `nbd+unix:///?socket=${sock}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `/usr/bin:${process.env['PATH'] ?? ''}` },
    });
    const session = new Session(server, client, dir);
    session.serverStderr = stderr;
    const hello = await session.nextLine();
    if (hello === null || !hello.startsWith('ok ')) {
      await session.stop().catch(() => {});
      throw new Error(`nbd lane: the libnbd client could not connect: ${hello}`);
    }
    return { session, size: Number(hello.slice(3)) };
  }

  private nextLine(): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sends one request line; resolves with the answer's payload, rejects with the client's error. */
  async call(line: string): Promise<string> {
    this.client.stdin!.write(line + '\n');
    const answer = await this.nextLine();
    if (answer === null) throw new Error(`nbd lane: the client ended (server: ${this.serverStderr.trim()})`);
    if (answer.startsWith('err ')) throw new Error(`NBD: ${answer.slice(4)}`);
    return answer.slice(3);
  }

  /** The client disconnects, the server is stopped with SIGTERM and must exit with status 0. */
  async stop(): Promise<void> {
    try {
      if (!this.ended) await this.call('Q').catch(() => {});
      this.client.stdin!.end();
      await Promise.race([this.clientExit, new Promise((r) => setTimeout(r, 5_000))]);
      if (this.client.exitCode === null) this.client.kill('SIGKILL');
      this.server.kill('SIGTERM');
      const timer = setTimeout(() => this.server.kill('SIGKILL'), 15_000);
      const status = await this.serverExit;
      clearTimeout(timer);
      if (status.code !== 0) throw new Error(`nbd lane: qcow2 nbd exited with ${status.signal ?? status.code} at SIGTERM: ${this.serverStderr.trim()}`);
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

class NbdLaneDevice implements Qcow2Device {
  readonly format = 'qcow2' as const;
  readonly readOnly = false;
  readonly backing = undefined;
  /** The lanes serve unencrypted test images only. */
  readonly encrypted = false;
  private session: Session | undefined;
  private size: number;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    readonly clusterSize: number,
    readonly backingName: string | undefined,
    readonly dataFile: { name: string; path: string | undefined } | undefined,
    readonly capabilities: DeviceCapabilities,
    size: number,
  ) {
    this.size = size;
  }

  static async open(path: string): Promise<NbdLaneDevice> {
    const probe = await openOptimized(path);
    let dev: NbdLaneDevice;
    try {
      dev = new NbdLaneDevice(path, probe.clusterSize, probe.backingName, probe.dataFile, probe.capabilities, probe.virtualSize);
    } finally {
      await probe.close();
    }
    await dev.exclusive(() => dev.serving());
    return dev;
  }

  get virtualSize(): number {
    return this.size;
  }

  /** Runs `fn` alone: requests are taken one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async serving(): Promise<Session> {
    if (!this.session) {
      const { session, size } = await Session.start(this.path);
      this.session = session;
      this.size = size;
    }
    return this.session;
  }

  private wire(line: string): Promise<string> {
    return this.exclusive(async () => (await this.serving()).call(line));
  }

  /** Stops serving, then runs `fn` on the optimized engine with the image to itself. */
  private offline<T>(fn: (dev: Qcow2Device) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      if (this.session) {
        const s = this.session;
        this.session = undefined;
        await s.stop();
      }
      const dev = await openOptimized(this.path);
      try {
        return await fn(dev);
      } finally {
        this.size = dev.virtualSize;
        await dev.close();
      }
    });
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return this.offline((d) => d.read(offset, length));
    return new Uint8Array(Buffer.from(await this.wire(`R ${offset} ${length}`), 'base64'));
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    target.set(await this.read(offset, target.byteLength));
  }

  async write(offset: number, data: Uint8Array, _opts?: WriteOptions): Promise<void> {
    if (data.byteLength === 0) return this.offline((d) => d.write(offset, data));
    await this.wire(`W ${offset} ${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`);
  }

  async writeZeroes(offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
    if (length === 0) return this.offline((d) => d.writeZeroes(offset, length, opts));
    await this.wire(`Z ${offset} ${length} ${opts.unmap ? 1 : 0}`);
  }

  async discard(offset: number, length: number): Promise<void> {
    if (length === 0) return this.offline((d) => d.discard(offset, length));
    await this.wire(`T ${offset} ${length}`);
  }

  async flush(): Promise<void> {
    await this.wire('F');
  }

  resize(newSize: number): Promise<void> {
    return this.offline((d) => d.resize(newSize));
  }

  mapExtents(offset: number, length: number): Promise<Extent[]> {
    return this.offline((d) => d.mapExtents(offset, length));
  }

  blockStatus(offset: number, length: number): Promise<StatusExtent[]> {
    return this.offline((d) => d.blockStatus(offset, length));
  }

  hostRefcount(index: number): Promise<number> {
    return this.offline((d) => d.hostRefcount(index));
  }

  writeCompressed(offset: number, data: Uint8Array): Promise<void> {
    return this.offline((d) => d.writeCompressed(offset, data));
  }

  makeEmpty(): Promise<void> {
    return this.offline((d) => d.makeEmpty());
  }

  listSnapshots(): Promise<SnapshotInfo[]> {
    return this.offline((d) => d.listSnapshots());
  }

  createSnapshot(name: string): Promise<SnapshotInfo> {
    return this.offline((d) => d.createSnapshot(name));
  }

  applySnapshot(idOrName: string): Promise<void> {
    return this.offline((d) => d.applySnapshot(idOrName));
  }

  deleteSnapshot(idOrName: string): Promise<void> {
    return this.offline((d) => d.deleteSnapshot(idOrName));
  }

  changeBackingFile(name: string | undefined, format: string | undefined): Promise<void> {
    return this.offline((d) => d.changeBackingFile(name, format));
  }

  readBitmap(name: string): Promise<PersistentBitmap> {
    return Promise.reject(unsupported(`nbd lane: bitmap '${name}': the lane's image is open in its server process, which cannot lend out a bitmap here`));
  }

  editBitmaps(edits: readonly BitmapEdit[]): Promise<void> {
    return this.offline((d) => d.editBitmaps(edits));
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      const s = this.session;
      this.session = undefined;
      await s?.stop();
    });
  }
}

/** Opens an image on the NBD lane (the suite's options must be the defaults: a real server takes none of them). */
export async function openNbdLane(path: string, opts: OpenOptions = {}): Promise<Qcow2Device> {
  const given = Object.entries(opts).filter(([, v]) => v !== undefined && v !== false);
  if (given.length > 0) throw new Error(`nbd lane: options ${given.map(([k]) => k).join(', ')} cannot be given to a server`);
  return NbdLaneDevice.open(path);
}
