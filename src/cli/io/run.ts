/**
 * `qcow2 io [-f raw|qcow2] [-r] -c CMD [-c CMD …] IMAGE`: qemu-io's commands (read, write,
 * discard, flush; see parse.ts) run on our engines, with qemu-io's output. Every command is parsed
 * before the image is opened; then they all run in order, and the exit status is 1 when any of
 * them failed (qemu-io's rule), else 0.
 *
 * Runs parsed qemu-io commands against a device and prints what qemu-io 7.2 prints:
 * - success: the statistics lines (`wrote 65536/65536 bytes at offset 0` + the timing line), none
 *   with -q; `read -v` dumps the data first;
 * - `read -P` mismatch: `Pattern verification failed at offset N, M bytes` (then the statistics
 *   unless -q), and the command fails;
 * - a request beyond the virtual size: `read failed: Input/output error` (likewise `write failed:`,
 *   `discard failed:`), as qemu's block layer answers EIO; an engine error prints the strerror()
 *   text of its errno (errnoOf in src/errors.ts: a full disk is `No space left on device`, a
 *   corrupt image `Input/output error`, ...), and its details go to stderr;
 * - `write -c` on a device without compressed writes (raw): `write failed: Operation not supported`;
 *   on qcow2, a zero length succeeds and an offset not on a cluster boundary, or a length not a
 *   whole number of clusters unless it ends at the end of the image, fails with Invalid argument;
 * - writes and discards on a read-only device: `Block node is read-only` on stderr.
 * All of these go to stdout like qemu-io's printf()s, except the read-only message, and a failing
 * command does not stop the ones after it.
 */
import { type ImageFormat, openImage } from '../../device/open.js';
import { type Errno, errnoOf, errnoText, isQcow2Error, usage } from '../../errors.js';
import { type BlockDevice, isQcow2 } from '../../engine/types.js';
import { hexdump, report } from './format.js';
import { onePositional, parse } from '../args.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from '../image-opts.js';
import type { CliContext } from '../context.js';
import { type DiscardOp, type IoOp, parseScript, type ReadOp, type WriteOp } from './parse.js';

export async function io(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      cmd: { type: 'string', short: 'c', multiple: true },
      format: { type: 'string', short: 'f' },
      'read-only': { type: 'boolean', short: 'r' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'io',
  );
  const secrets = new Secrets(values.object);
  const image = imageArg(onePositional(positionals, 'image', 'io'), values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = image.path;
  const format = image.format ?? imageFormat(values.format);
  const commands = values.cmd ?? [];
  if (commands.length === 0) throw usage('io: give the commands with -c (interactive mode is not supported)');
  const ops = parseScript(commands);
  let device: BlockDevice;
  try {
    device = await openImage(filename, { format, readOnly: values['read-only'] === true, ...keyOptions(image) });
  } finally {
    forgetSecrets(image);
  }
  try {
    const { failures } = await runOps(device, ops, ctx);
    return failures === 0 ? 0 : 1;
  } finally {
    await device.close();
  }
}

function imageFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw usage(`io: -f must be 'raw' or 'qcow2', not '${value}'`);
}

export interface IoOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export interface RunOptions {
  /** Monotonic clock in nanoseconds, for the timing lines (tests pass a fake). */
  now?: () => bigint;
  /** Prefix of messages on stderr; default 'qcow2 io'. */
  program?: string;
}

export interface RunResult {
  /** How many commands failed (the exit code is 1 when any did). */
  failures: number;
}

/** Runs every op in order, whatever fails; engine bugs (non-Qcow2Error throws) propagate. */
export async function runOps(device: BlockDevice, ops: readonly IoOp[], out: IoOutput, opts: RunOptions = {}): Promise<RunResult> {
  let failures = 0;
  for (const op of ops) {
    if (!(await runOp(device, op, out, opts))) failures++;
  }
  return { failures };
}

/** Runs one op; false when it failed (qemu-io's negative return). */
export async function runOp(device: BlockDevice, op: IoOp, out: IoOutput, opts: RunOptions = {}): Promise<boolean> {
  const run = new Runner(device, out, opts);
  switch (op.kind) {
    case 'read':
      return run.read(op);
    case 'write':
      return run.write(op);
    case 'discard':
      return run.discard(op);
    case 'flush':
      return run.flush();
  }
}

class Runner {
  private readonly now: () => bigint;
  private readonly program: string;

  constructor(
    private readonly device: BlockDevice,
    private readonly out: IoOutput,
    opts: RunOptions,
  ) {
    this.now = opts.now ?? process.hrtime.bigint;
    this.program = opts.program ?? 'qcow2 io';
  }

  async read(op: ReadOp): Promise<boolean> {
    if (!this.inRange(op.offset, op.length)) return this.failed('read', 'EIO');
    const t1 = this.now();
    let data: Uint8Array;
    try {
      data = new Uint8Array(op.length);
      if (op.length > 0) await this.device.readInto(op.offset, data);
    } catch (err) {
      return this.engineFailed('read', err);
    }
    const t2 = this.now();
    let ok = true;
    if (op.pattern !== undefined) {
      const end = op.patternOffset + op.patternLength;
      for (let i = op.patternOffset; i < end; i++) {
        if (data[i] !== op.pattern) {
          this.out.stdout(`Pattern verification failed at offset ${op.offset + op.patternOffset}, ${op.patternLength} bytes\n`);
          ok = false;
          break;
        }
      }
    }
    if (op.quiet) return ok;
    if (op.verbose) this.out.stdout(hexdump(data, op.offset));
    this.out.stdout(report('read', t2 - t1, op.offset, op.length, op.length, op.machine));
    return ok;
  }

  async write(op: WriteOp): Promise<boolean> {
    if (this.device.readOnly) return this.readOnly();
    if (!this.inRange(op.offset, op.length)) return this.failed('write', 'EIO');
    const t1 = this.now();
    try {
      if (op.mode === 'zeroes') {
        if (op.length > 0) await this.device.writeZeroes(op.offset, op.length, { unmap: op.unmap });
      } else if (op.mode === 'compressed') {
        if (!isQcow2(this.device)) return this.failed('write', 'ENOTSUP');
        if (op.length > 0) {
          const cluster = this.device.clusterSize;
          const endsImage = op.offset + op.length === this.device.virtualSize;
          if (op.offset % cluster !== 0 || (op.length % cluster !== 0 && !endsImage)) return this.failed('write', 'EINVAL');
          await this.device.writeCompressed(op.offset, new Uint8Array(op.length).fill(op.pattern));
        }
      } else if (op.length > 0) {
        await this.device.write(op.offset, new Uint8Array(op.length).fill(op.pattern));
      }
      if (op.fua) await this.device.flush();
    } catch (err) {
      return this.engineFailed('write', err);
    }
    const t2 = this.now();
    if (!op.quiet) this.out.stdout(report('wrote', t2 - t1, op.offset, op.length, op.length, op.machine));
    return true;
  }

  async discard(op: DiscardOp): Promise<boolean> {
    if (this.device.readOnly) return this.readOnly();
    if (!this.inRange(op.offset, op.length)) return this.failed('discard', 'EIO');
    const t1 = this.now();
    try {
      if (op.length > 0) await this.device.discard(op.offset, op.length);
    } catch (err) {
      return this.engineFailed('discard', err);
    }
    const t2 = this.now();
    if (!op.quiet) this.out.stdout(report('discard', t2 - t1, op.offset, op.length, op.length, op.machine));
    return true;
  }

  async flush(): Promise<boolean> {
    try {
      await this.device.flush();
      return true;
    } catch (err) {
      // qemu-io fails the command silently; we at least say why.
      if (!isQcow2Error(err)) throw err;
      this.out.stderr(`${this.program}: flush failed: ${err.describe()}\n`);
      return false;
    }
  }

  /** qemu's blk_check_byte_request(): the whole request must lie within the virtual size. */
  private inRange(offset: number, length: number): boolean {
    const size = this.device.virtualSize;
    return offset <= size && size - offset >= length;
  }

  private failed(what: 'read' | 'write' | 'discard', errno: Errno): false {
    this.out.stdout(`${what} failed: ${errnoText(errno)}\n`);
    return false;
  }

  private engineFailed(what: 'read' | 'write' | 'discard', err: unknown): false {
    if (!isQcow2Error(err)) throw err;
    this.out.stderr(`${this.program}: ${err.describe()}\n`);
    return this.failed(what, errnoOf(err));
  }

  private readOnly(): false {
    this.out.stderr(`${this.program}: Block node is read-only\n`);
    return false;
  }
}
