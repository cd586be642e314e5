/**
 * `qcow2 bench [-c COUNT] [-d DEPTH] [-f FMT] [--flush-interval=N] [-i AIO] [-n] [--no-drain]
 * [-o OFFSET] [--pattern=N] [-q] [-s SIZE] [-S STEP] [-t CACHE] [-w] [-U] [--object OBJ]
 * [--image-opts] FILENAME`:
 * `qemu-img bench` on our engines, with its options, defaults, request order and output lines
 * (the request loop is src/bench/runner.ts).
 *
 * Where we differ, on purpose:
 * - `-t none|off|directsync` (O_DIRECT), `-i native|io_uring` and `-n` are refused
 *   with a typed 'unsupported' error: our engines do their I/O through the page cache with Node's
 *   fs, so accepting them would measure something else under their name.
 * - `-t writeback` (QEMU's default) is how we always run; `-t writethrough` flushes after every
 *   write; `-t unsafe` drops flushes. Our default I/O is synchronous pread/pwrite (see
 *   src/io/node-file.ts); `-i threads` (QEMU's default) does it on libuv's thread pool instead.
 *   `-U` is accepted: we take no image locks.
 * - `--object secret,...` is taken (qemu-img 7.2 bench takes `--image-opts` but not `--object`, so
 *   it cannot open an encrypted image): with `--image-opts ...,encrypt.key-secret=ID` an encrypted
 *   image is benchmarked (src/cli/image-opts.ts).
 * - `-d 0` makes QEMU loop forever without submitting anything; we refuse it.
 * - An empty image with requests to send makes QEMU divide by zero; we refuse it.
 * - A failed request is reported through the usual Qcow2Error line instead of
 *   `Failed request: <strerror>`; the exit status is 1 either way.
 */
import { openImage, type ImageFormat } from '../device/open.js';
import { ioError, isQcow2Error, unsupported, usage } from '../errors.js';
import { intOption } from '../bench/numbers.js';
import { completedLine, flushLine, sendingLine } from '../bench/report.js';
import { runBench, type BenchCache, type BenchPlan } from '../bench/runner.js';
import { INT_MAX, MAX_VIRTUAL_SIZE } from '../limits.js';
import { cvtnumFull } from '../units.js';
import { parse } from './args.js';
import { cacheMode } from './cache-mode.js';
import { commandHelp } from './commands.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, type ImageArg, keyOptions, resolveImageArg } from './image-opts.js';

export interface BenchCommand extends BenchPlan {
  /** 'threads' with -i threads; otherwise our default (synchronous pread/pwrite). */
  io?: 'threads';
  filename: string;
  format: ImageFormat | undefined;
  /** The operand with the passphrases `--object` and `--image-opts` give (zeroed once the image is open). */
  operand: ImageArg;
}

/** Reads the arguments as qemu-img bench does; every check happens before the image is opened. */
export function parseBenchArgs(args: string[]): BenchCommand | 'help' {
  const { values, positionals } = parse(
    args,
    {
      help: { type: 'boolean', short: 'h' },
      count: { type: 'string', short: 'c' },
      depth: { type: 'string', short: 'd' },
      format: { type: 'string', short: 'f' },
      native: { type: 'boolean', short: 'n' },
      aio: { type: 'string', short: 'i' },
      offset: { type: 'string', short: 'o' },
      quiet: { type: 'boolean', short: 'q' },
      size: { type: 'string', short: 's' },
      step: { type: 'string', short: 'S' },
      cache: { type: 'string', short: 't' },
      write: { type: 'boolean', short: 'w' },
      'force-share': { type: 'boolean', short: 'U' },
      pattern: { type: 'string' },
      'flush-interval': { type: 'string' },
      'no-drain': { type: 'boolean' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'bench',
  );
  if (values.help) return 'help';

  const count = values.count === undefined ? 75000 : intOption(values.count);
  if (count === undefined) throw usage('bench: Invalid request count specified');
  // QEMU takes 0 and then waits forever for requests it never sends.
  const depth = values.depth === undefined ? 64 : intOption(values.depth, 1);
  if (depth === undefined) throw usage(`bench: Invalid queue depth specified (1 to ${INT_MAX})`);
  const format = imageFormat(values.format);
  if (values.native) throw unsupported('bench: -n (aio=native) needs O_DIRECT, which our engines do not use');
  const io = values.aio === undefined ? undefined : aioMode(values.aio);
  const offset = values.offset === undefined ? 0 : sizeOption(values.offset, 'offset', MAX_VIRTUAL_SIZE); // qemu-img: INT64_MAX; ours stays exact
  const bufferSize = values.size === undefined ? 4096 : sizeOption(values.size, 'buffer size', INT_MAX);
  const step = values.step === undefined ? 0 : sizeOption(values.step, 'step_size', INT_MAX);
  const cache = values.cache === undefined ? 'writeback' : cacheMode('bench', values.cache);
  const pattern = values.pattern === undefined ? 0 : intOption(values.pattern, 0, 0xff);
  if (pattern === undefined) throw usage('bench: Invalid pattern byte specified');
  const flushInterval = values['flush-interval'] === undefined ? 0 : intOption(values['flush-interval']);
  if (flushInterval === undefined) throw usage('bench: Invalid flush interval specified');

  if (positionals.length !== 1 || positionals[0] === undefined) throw usage('bench: Expecting one image file name');
  const write = values.write === true;
  if (!write && flushInterval) throw usage('bench: --flush-interval is only available in write tests');
  if (flushInterval && flushInterval < depth) throw usage("bench: Flush interval can't be smaller than depth");

  const operand = resolveImageArg(positionals[0], values.object, values['image-opts'] === true);
  return {
    filename: operand.path,
    operand,
    format: operand.format ?? format,
    ...(io ? { io } : {}),
    write,
    count,
    depth,
    bufferSize,
    step: step || bufferSize,
    offset,
    pattern,
    flushInterval,
    drainOnFlush: values['no-drain'] !== true,
    cache,
  };
}

export async function bench(args: string[], ctx: CliContext): Promise<number> {
  const command = parseBenchArgs(args);
  if (command === 'help') {
    ctx.stdout(commandHelp('bench'));
    return 0;
  }
  let device;
  try {
    device = await openImage(command.filename, { format: command.format, readOnly: !command.write, ...(command.io ? { io: command.io } : {}), ...keyOptions(command.operand) });
  } finally {
    forgetSecrets(command.operand);
  }
  try {
    if (command.count > 0 && device.virtualSize <= 0) throw usage('bench: the image is empty, there is nowhere to send requests');
    ctx.stdout(sendingLine(command));
    if (command.flushInterval) ctx.stdout(flushLine(command.flushInterval));
    let result;
    try {
      result = await runBench(device, command);
    } catch (err) {
      if (isQcow2Error(err)) throw err;
      throw ioError(`Failed request: ${(err as Error).message}`, { cause: err });
    }
    ctx.stdout(completedLine(result.seconds));
    return 0;
  } finally {
    await device.close();
  }
}

function imageFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw unsupported(`bench: format '${value}' is not supported (raw and qcow2 are)`);
}

/** qemu's cvtnum_full(name, text, 0, max), with its messages. */
function sizeOption(text: string, name: string, max: number): number {
  const r = cvtnumFull(name, text, BigInt(max));
  if ('error' in r) throw usage(`bench: ${r.error}`);
  return Number(r.value);
}

/** bdrv_parse_aio's names: 'threads' selects libuv's thread pool; native and io_uring are refused. */
function aioMode(value: string): 'threads' {
  if (value === 'threads') return 'threads';
  if (value === 'native' || value === 'io_uring') {
    throw unsupported(`bench: aio mode '${value}' is not supported; our engines use synchronous pread/pwrite, or a thread pool with -i threads`);
  }
  throw usage(`bench: Invalid aio option: ${value}`);
}
