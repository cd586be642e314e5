/**
 * The ublk lane: the campaign's op sequences run through a Linux block device, /dev/ublkbN, opened
 * with O_DIRECT. The image is served by `qcow2 ublk add --foreground --discard=unmap` (the real
 * program, a process of its own; the kernel's ublk driver and block layer sit between it and this
 * lane), so it needs a kernel with ublk_drv, root, and the ublk addon: the campaign runs it in the
 * 6.12 VM (test/ublk/campaign.test.ts).
 *
 * How each operation reaches the device (512-byte logical blocks; O_DIRECT wants offsets, lengths
 * and memory 512-aligned, so all I/O goes through an aligned bounce buffer, a WebAssembly memory):
 *  - read: the 512-aligned range around it is read (pread, O_DIRECT) and the asked bytes copied out;
 *  - write: the aligned range around it; a partial first or last sector is read first and the
 *    data copied over it (read-modify-write: the lane takes one request at a time, so nothing
 *    changes between the read and the write). The same (sub)clusters are written as by a
 *    byte-granular write, since clusters are at least one sector and sector-aligned;
 *  - flush: fsync(2) on the device (a FLUSH request);
 *  - discard: BLKDISCARD (blkdiscard(8), which Node cannot issue) of the range shrunk inwards to
 *    whole sectors: a discard acts on whole clusters only, and a cluster inside the range is inside
 *    the shrunk range too, so nothing is lost; an empty shrunk range is nothing to do;
 *  - write zeroes: fallocate(2) on the device (the project's addon): FALLOC_FL_ZERO_RANGE is
 *    REQ_OP_WRITE_ZEROES with NOUNMAP, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE the same without it (unmap
 *    allowed). A block device cannot zero part of a sector, and how a qcow2 engine zeroes part of
 *    a (sub)cluster depends on what is around it (QEMU's rules, src/qcow2/zero-discard.ts: a zero
 *    (sub)cluster when the rest of it reads as zeros and it holds no data, explicit zeros
 *    otherwise), which the mappings later compared between lanes show. So the lane splits the
 *    range as the engine does, into partial (sub)clusters at the ends and whole ones between:
 *      - the whole ones are one write-zeroes request (they are sector-aligned);
 *      - on an image that always writes explicit zeros (v2, a raw data file), a partial sector is
 *        written as data (read-modify-write with zeros);
 *      - a partial (sub)cluster piece: its sectors are read; if the bytes of those sectors outside
 *        the piece are not all zero, the engine writes explicit zeros, so the lane writes them as
 *        data (read-modify-write); if they are, the sectors are one write-zeroes request, which the
 *        engine judges by exactly the same rule, unless those sectors make up the whole
 *        (sub)cluster (always so for 512-byte units): then that piece is done offline, below.
 * What a block device cannot express (mappings, compressed writes, snapshots, resize, refcounts,
 * and the partial zero writes above) is done offline: the lane closes the device, the server is
 * stopped (SIGTERM: it deletes the device and closes the image; exit status 0 required), the
 * optimized engine opens the image, does it, closes it, and the next request through the device
 * starts the server again. close() stops the server the same way, so the final image is the
 * server's, judged like every other lane's.
 *
 * Requests are taken one at a time (the lane is not concurrent): the read-modify-writes need it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { BitmapEdit, DeviceCapabilities, Extent, OpenOptions, PersistentBitmap, Qcow2Device, SnapshotInfo, StatusExtent, WriteOptions, WriteZeroesOptions } from '../engine/types.js';
import { unsupported } from '../errors.js';
import { readMetadata } from '../image/metadata.js';
import { loadNative, nativeLoadError } from '../io/native.js';
import { NodeFile } from '../io/node-file.js';
import { openOptimized } from '../optimized/open.js';

const QCOW2_BIN = fileURLToPath(new URL('../../bin/qcow2', import.meta.url));
const SECTOR = 512;
/** The bounce buffer: reads and writes larger than this go in pieces. */
const BOUNCE_BYTES = 1024 * 1024;

const floorSector = (n: number) => Math.floor(n / SECTOR) * SECTOR;
const ceilSector = (n: number) => Math.ceil(n / SECTOR) * SECTOR;

/**
 * What went through the lane since the process started (all its devices): the campaign prints it,
 * and its test checks that every kind of request did reach a device.
 */
export const ublkLaneStats = {
  /** Servers started (`qcow2 ublk add`), and the milliseconds spent starting and stopping them. */
  starts: 0,
  serverMs: 0,
  /** O_DIRECT preads and pwrites (the reads of read-modify-writes included). */
  preads: 0,
  pwrites: 0,
  /** Writes whose first or last sector was partial. */
  readModifyWrites: 0,
  /** fallocate(2) calls (write-zeroes requests), by unmap. */
  zeroRequests: 0,
  zeroUnmapRequests: 0,
  /** BLKDISCARDs, and discards with no whole sector (nothing to send). */
  discards: 0,
  emptyDiscards: 0,
  flushes: 0,
  /** Operations done with the server stopped (partial zero writes among them). */
  offline: 0,
  offlineZeroes: 0,
};

/** WebAssembly, which the project's type libraries (no DOM) do not declare. */
const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly;

/** Memory for O_DIRECT: a WebAssembly memory's buffer starts page-aligned. */
function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new wasm.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.byteLength; i++) if (b[i] !== 0) return false;
  return true;
}

/** One `qcow2 ublk add --foreground` and the lane's O_DIRECT descriptor of its device. */
class Server {
  private stderr = '';
  private readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    private readonly child: ChildProcess,
    readonly blockPath: string,
    readonly fh: FileHandle,
  ) {
    this.exit = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  static async start(path: string): Promise<Server> {
    const t0 = Date.now();
    const child = spawn(process.execPath, [QCOW2_BIN, 'ublk', 'add', '--foreground', '--discard=unmap', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      if (stderr.length < 65536) stderr += c;
    });
    child.stdout!.setEncoding('utf8');
    let stdout = '';
    const blockPath = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`ublk lane: qcow2 ublk add not serving ${path} after 60 s: ${stderr}`));
      }, 60_000);
      child.stdout!.on('data', (c: string) => {
        stdout += c;
        const m = /^(\/dev\/ublkb\d+)\n/m.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`ublk lane: qcow2 ublk add ended (${signal ?? code}) before serving ${path}: ${stderr.trim()}`));
      });
    });
    let fh: FileHandle;
    try {
      fh = await open(blockPath, constants.O_RDWR | constants.O_DIRECT);
    } catch (err) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      throw err;
    }
    const server = new Server(child, blockPath, fh);
    ublkLaneStats.starts++;
    ublkLaneStats.serverMs += Date.now() - t0;
    child.stderr!.removeAllListeners('data');
    server.stderr = stderr;
    child.stderr!.on('data', (c: string) => {
      if (server.stderr.length < 65536) server.stderr += c;
    });
    return server;
  }

  /** The lane's descriptor is closed, the server gets SIGTERM and must exit with status 0. */
  async stop(): Promise<void> {
    const t0 = Date.now();
    await this.fh.close();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const status = await this.exit;
    clearTimeout(timer);
    ublkLaneStats.serverMs += Date.now() - t0;
    if (status.code !== 0) throw new Error(`ublk lane: qcow2 ublk exited with ${status.signal ?? status.code} at SIGTERM: ${this.stderr.trim()}`);
  }

  /** What the server said so far (for error messages). */
  get log(): string {
    return this.stderr.trim();
  }
}

/** What the zero writes need to know of the image (none of it changes during a campaign). */
interface ZeroRules {
  /** v2 or a raw data file: every zero write is explicit zeros. */
  explicit: boolean;
  /** The unit a zero write can make read as zeros without writing: the subcluster, or the cluster. */
  unit: number;
}

class UblkLaneDevice implements Qcow2Device {
  readonly format = 'qcow2' as const;
  readonly readOnly = false;
  readonly backing = undefined;
  /** The lanes serve unencrypted test images only. */
  readonly encrypted = false;
  private server: Server | undefined;
  private size: number;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly bounce = alignedBuffer(BOUNCE_BYTES);

  private constructor(
    readonly path: string,
    readonly clusterSize: number,
    readonly backingName: string | undefined,
    readonly dataFile: { name: string; path: string | undefined } | undefined,
    readonly capabilities: DeviceCapabilities,
    size: number,
    private readonly rules: ZeroRules,
  ) {
    this.size = size;
  }

  static async open(path: string): Promise<UblkLaneDevice> {
    const file = await NodeFile.open(path, { readOnly: true });
    let rules: ZeroRules;
    try {
      const meta = await readMetadata(file);
      rules = {
        explicit: meta.header.version < 3 || meta.layout.features.dataFileRaw,
        unit: meta.layout.geometry.subclusterSize,
      };
    } finally {
      await file.close();
    }
    const probe = await openOptimized(path);
    try {
      // The device is started at the first request through it (a reopen followed by offline work starts none).
      return new UblkLaneDevice(path, probe.clusterSize, probe.backingName, probe.dataFile, probe.capabilities, probe.virtualSize, rules);
    } finally {
      await probe.close();
    }
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

  private async serving(): Promise<Server> {
    if (!this.server) this.server = await Server.start(this.path);
    return this.server;
  }

  private async stopServing(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await s?.stop();
  }

  /** Runs `fn` on the device (one request at a time). */
  private online<T>(fn: (s: Server) => Promise<T>): Promise<T> {
    return this.exclusive(async () => fn(await this.serving()));
  }

  /** Stops serving, then runs `fn` on the optimized engine with the image to itself. */
  private offline<T>(fn: (dev: Qcow2Device) => Promise<T>): Promise<T> {
    return this.exclusive(() => this.offlineNow(fn));
  }

  private async offlineNow<T>(fn: (dev: Qcow2Device) => Promise<T>): Promise<T> {
    await this.stopServing();
    ublkLaneStats.offline++;
    const dev = await openOptimized(this.path);
    try {
      return await fn(dev);
    } finally {
      this.size = dev.virtualSize;
      await dev.close();
    }
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`ublk lane: ${what} of ${length} bytes at ${offset} is outside the device (${this.size} bytes)`);
    }
  }

  /** pread of sector-aligned [from, from + length) into the bounce buffer at `at` (length up to what fits). */
  private async preadAligned(s: Server, from: number, length: number, at = 0): Promise<void> {
    ublkLaneStats.preads++;
    const { bytesRead } = await s.fh.read(this.bounce, at, length, from);
    if (bytesRead !== length) throw new Error(`ublk lane: read ${bytesRead} of ${length} bytes at ${from} from ${s.blockPath}`);
  }

  private async pwriteAligned(s: Server, from: number, length: number): Promise<void> {
    ublkLaneStats.pwrites++;
    const { bytesWritten } = await s.fh.write(this.bounce, 0, length, from);
    if (bytesWritten !== length) throw new Error(`ublk lane: wrote ${bytesWritten} of ${length} bytes at ${from} to ${s.blockPath}`);
  }

  private async readThrough(s: Server, offset: number, target: Uint8Array): Promise<void> {
    const end = offset + target.byteLength;
    for (let from = floorSector(offset); from < end; from += BOUNCE_BYTES) {
      const to = Math.min(ceilSector(end), from + BOUNCE_BYTES);
      await this.preadAligned(s, from, to - from);
      const a = Math.max(from, offset);
      const b = Math.min(to, end);
      target.set(this.bounce.subarray(a - from, b - from), a - offset);
    }
  }

  /**
   * Writes `data` (or zeros, when undefined) at `offset` through the device: the sector-aligned
   * range around it, partial first and last sectors read first.
   */
  private async writeThrough(s: Server, offset: number, length: number, data: Uint8Array | undefined): Promise<void> {
    const end = offset + length;
    for (let from = floorSector(offset); from < end; from += BOUNCE_BYTES) {
      const to = Math.min(ceilSector(end), from + BOUNCE_BYTES);
      const a = Math.max(from, offset);
      const b = Math.min(to, end);
      if (a > from || b < to) ublkLaneStats.readModifyWrites++;
      if (a > from) await this.preadAligned(s, from, SECTOR);
      if (b < to) await this.preadAligned(s, to - SECTOR, SECTOR, to - SECTOR - from);
      if (data) this.bounce.set(data.subarray(a - offset, b - offset), a - from);
      else this.bounce.fill(0, a - from, b - from);
      await this.pwriteAligned(s, from, to - from);
    }
  }

  /** A write-zeroes request for sector-aligned [from, to): fallocate(2) on the device. */
  private zeroRequest(s: Server, from: number, to: number, unmap: boolean): void {
    if (to <= from) return;
    const native = loadNative();
    if (!native) throw new Error(`ublk lane: the native addon is needed for fallocate on ${s.blockPath}: ${nativeLoadError()}`);
    const mode = unmap ? native.FALLOC_FL_PUNCH_HOLE | native.FALLOC_FL_KEEP_SIZE : native.FALLOC_FL_ZERO_RANGE;
    if (unmap) ublkLaneStats.zeroUnmapRequests++;
    else ublkLaneStats.zeroRequests++;
    native.fallocate(s.fh.fd, mode, from, to - from);
  }

  /** A zero write inside one (sub)cluster, not of all of it: see the header comment. True when it must be done offline. */
  private async zeroPartialUnit(s: Server, a: number, b: number, unmap: boolean): Promise<boolean> {
    const za = floorSector(a);
    const zb = ceilSector(b);
    const unitStart = a - (a % this.rules.unit);
    const unitEnd = Math.min(unitStart + this.rules.unit, this.size);
    let outsideZero = true;
    if (a > za) {
      await this.preadAligned(s, za, SECTOR);
      outsideZero &&= isZero(this.bounce.subarray(0, a - za));
    }
    if (zb > b) {
      await this.preadAligned(s, zb - SECTOR, SECTOR);
      outsideZero &&= isZero(this.bounce.subarray(b - (zb - SECTOR), SECTOR));
    }
    if (!outsideZero) {
      await this.writeThrough(s, a, b - a, undefined);
      return false;
    }
    if (za === unitStart && zb === unitEnd) return true;
    this.zeroRequest(s, za, zb, unmap);
    return false;
  }

  private async zeroThrough(s: Server, offset: number, length: number, unmap: boolean): Promise<[number, number][]> {
    const end = offset + length;
    if (this.rules.explicit) {
      // Explicit zeros whatever the request: partial sectors as data, the sectors between as one request.
      const za = ceilSector(offset);
      const zb = floorSector(end);
      if (za >= zb) {
        await this.writeThrough(s, offset, length, undefined);
        return [];
      }
      if (offset < za) await this.writeThrough(s, offset, za - offset, undefined);
      this.zeroRequest(s, za, zb, unmap);
      if (zb < end) await this.writeThrough(s, zb, end - zb, undefined);
      return [];
    }
    const unit = this.rules.unit;
    const alignedStart = Math.ceil(offset / unit) * unit;
    let alignedEnd = Math.floor(end / unit) * unit;
    if (end === this.size && end > alignedEnd) alignedEnd = end;
    if (alignedStart >= alignedEnd) {
      // No whole unit: within one unit a partial piece, across two explicit zeros.
      const unitEnd = Math.min(offset - (offset % unit) + unit, this.size);
      if (end > unitEnd) await this.writeThrough(s, offset, length, undefined);
      else if (await this.zeroPartialUnit(s, offset, end, unmap)) return [[offset, end]];
      return [];
    }
    const later: [number, number][] = [];
    if (offset < alignedStart && (await this.zeroPartialUnit(s, offset, alignedStart, unmap))) later.push([offset, alignedStart]);
    this.zeroRequest(s, alignedStart, alignedEnd, unmap);
    if (alignedEnd < end && (await this.zeroPartialUnit(s, alignedEnd, end, unmap))) later.push([alignedEnd, end]);
    return later;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  readInto(offset: number, target: Uint8Array): Promise<void> {
    if (target.byteLength === 0) return this.offline((d) => d.readInto(offset, target));
    return this.online(async (s) => {
      this.checkRange('a read', offset, target.byteLength);
      await this.readThrough(s, offset, target);
    });
  }

  write(offset: number, data: Uint8Array, _opts?: WriteOptions): Promise<void> {
    if (data.byteLength === 0) return this.offline((d) => d.write(offset, data));
    return this.online(async (s) => {
      this.checkRange('a write', offset, data.byteLength);
      await this.writeThrough(s, offset, data.byteLength, data);
    });
  }

  writeZeroes(offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
    if (length === 0 || opts.fast) return this.offline((d) => d.writeZeroes(offset, length, opts));
    return this.exclusive(async () => {
      this.checkRange('a zero write', offset, length);
      const later = await this.zeroThrough(await this.serving(), offset, length, opts.unmap === true);
      if (later.length > 0) {
        ublkLaneStats.offlineZeroes += later.length;
        await this.offlineNow(async (d) => {
          for (const [a, b] of later) await d.writeZeroes(a, b - a, { unmap: opts.unmap === true });
        });
      }
    });
  }

  discard(offset: number, length: number): Promise<void> {
    if (length === 0) return this.offline((d) => d.discard(offset, length));
    return this.online(async (s) => {
      this.checkRange('a discard', offset, length);
      const from = ceilSector(offset);
      const to = floorSector(offset + length);
      if (to <= from) {
        ublkLaneStats.emptyDiscards++; // no whole sector, so no whole cluster
        return;
      }
      ublkLaneStats.discards++;
      await blkdiscard(s, from, to - from);
    });
  }

  flush(): Promise<void> {
    return this.online((s) => {
      ublkLaneStats.flushes++;
      return s.fh.sync();
    });
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
    return Promise.reject(unsupported(`ublk lane: bitmap '${name}': the lane's image is open in its server process, which cannot lend out a bitmap here`));
  }

  editBitmaps(edits: readonly BitmapEdit[]): Promise<void> {
    return this.offline((d) => d.editBitmaps(edits));
  }

  close(): Promise<void> {
    return this.exclusive(() => this.stopServing());
  }
}

/** BLKDISCARD of sector-aligned [offset, offset + length): blkdiscard(8), as Node has no ioctl. */
async function blkdiscard(s: Server, offset: number, length: number): Promise<void> {
  const child = spawn('blkdiscard', ['-f', '-o', String(offset), '-l', String(length), s.blockPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (stderr += c));
  const status = await new Promise<number | string>((resolve) => {
    child.once('error', (err) => resolve(err.message));
    child.once('exit', (code, signal) => resolve(signal ?? code ?? -1));
  });
  if (status !== 0) throw new Error(`ublk lane: blkdiscard of ${length} bytes at ${offset} on ${s.blockPath}: ${status} ${stderr.trim()} (server: ${s.log})`);
}

/**
 * The lane, as src/verification/engines.ts lists lanes (there: `{ ...ublkLane, suites: ['ublk-campaign'] }`):
 * the optimized engine behind `qcow2 ublk add --foreground`, driven through /dev/ublkbN with O_DIRECT,
 * one request at a time.
 */
export const ublkLane = {
  name: 'ublk',
  engine: 'optimized' as const,
  caches: 'default' as const,
  concurrent: false,
  open: (path: string, opts: OpenOptions = {}): Promise<Qcow2Device> => openUblkLane(path, opts),
};

/** Opens an image on the ublk lane (the suite's options must be the defaults: a real server takes none of them). */
export async function openUblkLane(path: string, opts: OpenOptions = {}): Promise<Qcow2Device> {
  const given = Object.entries(opts).filter(([, v]) => v !== undefined && v !== false);
  if (given.length > 0) throw new Error(`ublk lane: options ${given.map(([k]) => k).join(', ')} cannot be given to a server`);
  return UblkLaneDevice.open(path);
}
