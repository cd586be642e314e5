/**
 * `qcow2 convert [-f FMT] [-l SNAPSHOT] [-O raw|qcow2] [-o OPTIONS] [-B BACKING_FILE [-F BACKING_FMT]]
 * [-n [--target-is-zero] [--target-image-opts]] [-S SPARSE_SIZE] [--bitmaps [--skip-broken-bitmaps]]
 * [-c] [-C] [-m N] [-W] [-r RATE] [--salvage] [-p] [-q] [-t CACHE] [-T SRC_CACHE] IN OUT`: copies the guest contents of IN (through its backing chain) into OUT, as `qemu-img
 * convert` (QEMU 7.2's img_convert) does, with its checks in its order and its messages.
 *
 * - OUT is created (a raw file, or a qcow2 image with the -o options), or with `-n` opened as it is
 *   (-O's format, raw by default): it must be at least as large as IN; what lies past IN's size is
 *   left as it was. Zeros are left out of a new image; into an existing one they are written as
 *   zeros, unless `--target-is-zero` says it reads as zeros already.
 * - `-B BACKING_FILE -F BACKING_FMT` (or `-o backing_file=…,backing_fmt=…`): the new image names that
 *   backing file, and only what IN's top layer holds is copied, zeros as zeros; the rest is left
 *   unallocated, for the backing file to show through. qemu-img does not compare with the backing
 *   file: what IN's backing chain holds is assumed to be what BACKING_FILE holds. With `-n`, -B
 *   changes nothing in OUT's header, only what is copied (as qemu-img).
 * - `-S SPARSE_SIZE`: the shortest run of zeros inside data that is not written (a multiple of 512
 *   up to 16 MiB, 4k by default); `-S 0` writes everything, a fully allocated OUT.
 * - `--bitmaps`: IN's persistent bitmaps are copied to OUT (qcow2 v3 both; src/convert/bitmaps.ts);
 *   an inconsistent one is refused, or skipped with a warning (`--skip-broken-bitmaps`).
 * - `-c` writes compressed clusters; `-p` shows progress on a terminal. `-t CACHE` is the output's
 *   cache mode, `unsafe` by default as in qemu-img convert: the output is never flushed, and is as
 *   durable as the page cache makes it (`-t writeback` flushes once at the end, `-t writethrough`
 *   after every chunk).
 * - `-l SNAPSHOT` copies IN as it was at an internal snapshot (an ID or a name, or
 *   `snapshot.id=ID,snapshot.name=NAME`; src/cli/snapshot-ref.ts), at IN's current size, as qemu-img.
 * - `-T SRC_CACHE` takes qemu-img's names (IN is read through the page cache whatever the mode);
 *   `-m N` is the number of chunks in flight (1 to 16); `-W` lets a chunk's writes start before the
 *   previous chunk's are done (the layout is then timing's); `-C` (copy offloading) copies data as
 *   it is, without looking for zeros in it, as qemu-img's copy_range lays it out (not with -c, -S or
 *   --salvage); `-r RATE` throttles the writes to RATE bytes a second as QEMU does (0: no limit).
 * - `--salvage`: a sector that cannot be read is copied as zeros, with qemu-img's warning.
 * - `--target-image-opts` (with -n): OUT is an option list, as `--image-opts` takes one.
 * `--object secret,…` with `--image-opts` opens an encrypted IN; `-o encrypt.*` makes an encrypted OUT.
 * The copy itself is src/convert/copy.ts, which the library's convertImage runs too.
 */
import { DEFAULT_SPARSE_SIZE, MAX_SPARSE_SIZE, copyContents, createOutput } from '../convert/copy.js';
import { checkedSourceBitmaps, copyBitmaps, type SourceBitmapInfo, supportsBitmaps } from '../convert/bitmaps.js';
import { SECTOR } from '../convert/sparse.js';
import { type CreateOptionSet, parseCreateOptions, typedCreateOptions } from '../create/options.js';
import { openImage, type ImageFormat, type ImageKeys } from '../device/open.js';
import { type BlockDevice, isQcow2, type SnapshotRef } from '../engine/types.js';
import { errnoOf, errnoText, unsupported, usage } from '../errors.js';
import { cvtnumFull, qemuStrtol } from '../units.js';
import { commandLineError, parse, type Parsed } from './args.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, type ImageArg, imageArg, keyOptions, Secrets } from './image-opts.js';
import { cacheMode, sourceCacheMode } from './cache-mode.js';
import { openAtSnapshot, snapshotRef } from './snapshot-ref.js';
import type { CliContext } from './context.js';
import { chainOpenError, explainOpenError } from './open-error.js';
import { Progress } from './progress.js';

function format(value: string | undefined, what: string): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw usage(`convert: unknown ${what} format '${value}'`);
}

/** -S: bytes, a multiple of 512 up to 16 MiB (qemu-img's messages otherwise). */
function sparseSize(text: string): number {
  const r = cvtnumFull('buffer size for sparse output', text);
  if ('error' in r) throw usage(r.error);
  if (r.value % BigInt(SECTOR) !== 0n || r.value > BigInt(MAX_SPARSE_SIZE)) {
    throw usage(
      `Invalid buffer size for sparse output specified. Valid sizes are multiples of ${SECTOR} up to ${MAX_SPARSE_SIZE}. Select 0 to disable sparse detection (fully allocates output).`,
    );
  }
  return Number(r.value);
}

/** qemu-img convert's MAX_COROUTINES: the most -m takes. */
const MAX_COROUTINES = 16;

const CONVERT_OPTIONS = {
  format: { type: 'string', short: 'f' },
  'output-format': { type: 'string', short: 'O' },
  options: { type: 'string', short: 'o', multiple: true },
  'backing-file': { type: 'string', short: 'B' },
  'backing-format': { type: 'string', short: 'F' },
  'no-create': { type: 'boolean', short: 'n' },
  sparse: { type: 'string', short: 'S' },
  'target-is-zero': { type: 'boolean' },
  bitmaps: { type: 'boolean' },
  'skip-broken-bitmaps': { type: 'boolean' },
  compress: { type: 'boolean', short: 'c' },
  progress: { type: 'boolean', short: 'p' },
  cache: { type: 'string', short: 't' },
  quiet: { type: 'boolean', short: 'q' },
  'force-share': { type: 'boolean', short: 'U' },
  'source-cache': { type: 'string', short: 'T' },
  'load-snapshot': { type: 'string', short: 'l' },
  'rate-limit': { type: 'string', short: 'r' },
  coroutines: { type: 'string', short: 'm' },
  'out-of-order': { type: 'boolean', short: 'W' },
  'copy-range': { type: 'boolean', short: 'C' },
  salvage: { type: 'boolean' },
  'target-image-opts': { type: 'boolean' },
  ...IMAGE_OPTS_OPTIONS,
} as const;
type ConvertValues = Parsed<typeof CONVERT_OPTIONS>['values'];

export async function convert(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, CONVERT_OPTIONS, 'convert');
  const secrets = new Secrets(values.object);
  try {
    return await convertWith(ctx, values, positionals, secrets, args);
  } finally {
    secrets.dispose();
  }
}

/** -m: qemu_strtol's number, 1 to 16 (qemu-img's MAX_COROUTINES). */
function coroutines(text: string): number {
  const n = qemuStrtol(text);
  if (n === undefined || n < 1n || n > BigInt(MAX_COROUTINES)) {
    throw usage(`Invalid number of coroutines. Allowed number of coroutines is between 1 and ${MAX_COROUTINES}`);
  }
  return Number(n);
}

/** -r: bytes a second (0: no limit), with cvtnum's messages. */
function rateLimit(text: string): number {
  const r = cvtnumFull('rate limit', text);
  if ('error' in r) throw usage(r.error);
  // Past 2^53 bytes a second is no limit at all.
  return Number(r.value > BigInt(Number.MAX_SAFE_INTEGER) ? 0n : r.value);
}

async function convertWith(ctx: CliContext, values: ConvertValues, positionals: string[], secrets: Secrets, args: string[]): Promise<number> {
  // qemu-img's checks, in its order: the options as getopt meets them, then their combinations,
  // then the images.
  const argOrder = (short: string, long: string) => args.findIndex((a) => a.startsWith(short) || a.startsWith(long));
  let sparse = DEFAULT_SPARSE_SIZE;
  let snapshot: SnapshotRef | undefined;
  let coroutineCount: number | undefined;
  let rate: number | undefined;
  const checks: [number, () => void][] = [
    [argOrder('-S', '--sparse'), () => values.sparse !== undefined && (sparse = sparseSize(values.sparse))],
    [argOrder('-l', '--load-snapshot'), () => values['load-snapshot'] !== undefined && (snapshot = snapshotRef(values['load-snapshot'], 'convert', ctx))],
    [argOrder('-m', '--coroutines'), () => values.coroutines !== undefined && (coroutineCount = coroutines(values.coroutines))],
    [argOrder('-r', '--rate-limit'), () => values['rate-limit'] !== undefined && (rate = rateLimit(values['rate-limit']))],
  ];
  for (const [, check] of checks.sort((a, b) => a[0] - b[0])) check();
  const skipCreate = values['no-create'] === true;
  const bitmaps = values.bitmaps === true;
  const skipBroken = values['skip-broken-bitmaps'] === true;
  const options = values.options ?? [];
  if (skipBroken && !bitmaps) throw usage('Use of --skip-broken-bitmaps requires --bitmaps');
  const copyRange = values['copy-range'] === true;
  if (copyRange && values.compress) throw usage('Cannot enable copy offloading when -c is used');
  if (copyRange && values.sparse !== undefined) throw usage('Cannot enable copy offloading when -S is used');
  if (copyRange && values.salvage) throw usage('Cannot use copy offloading in salvaging mode');
  const targetImageOpts = values['target-image-opts'] === true;
  if (targetImageOpts && !skipCreate) throw usage('--target-image-opts requires use of -n flag');
  if (skipCreate && options.length > 0) throw usage('-o has no effect when skipping image creation');
  const targetIsZero = values['target-is-zero'] === true;
  if (targetIsZero && !skipCreate) throw usage('--target-is-zero requires use of -n flag');
  if (positionals.length !== 2) throw commandLineError('convert', `expected an input and an output image, got ${positionals.length} names`);
  const [inputOperand, output] = positionals as [string, string];
  if (values['source-cache'] !== undefined) sourceCacheMode(values['source-cache']);
  const outFormat = format(values['output-format'], 'output') ?? 'raw';
  // qemu-img convert writes its output with cache=unsafe unless told otherwise: no flushes at all.
  const cache = values.cache === undefined ? 'unsafe' : cacheMode('convert', values.cache);

  const image = imageArg(inputOperand, values['image-opts'] === true, secrets);
  let source: BlockDevice;
  try {
    source = await openSource(image.path, image.format ?? format(values.format, 'input'), keyOptions(image), image.text, snapshot);
  } finally {
    forgetSecrets(image);
  }
  try {
    let create: CreateOptionSet | undefined;
    let backing = values['backing-file'];
    if (!skipCreate) {
      create = createOptions(outFormat, options, source.virtualSize, backing, values['backing-format']);
      backing = create.get('backing_file')?.text;
    }
    if (targetIsZero && backing !== undefined) {
      // qemu-img 7.2 says so, and stops there, successfully.
      ctx.stderr('qcow2 convert: usage: Cannot use --target-is-zero when the destination image has a backing file\n');
      return 0;
    }
    if (create !== undefined && backing !== undefined && create.get('backing_fmt') === undefined) {
      throw usage('Use of backing file requires explicit backing format');
    }
    if (values.compress && outFormat !== 'qcow2') throw unsupported('Compression not supported for this file format');
    const sourceBitmaps = bitmaps ? await checkedSourceBitmaps(source, skipBroken) : [];

    const target =
      create === undefined
        ? await openExisting(output, targetImageOpts ? targetArg(output, values['output-format'], secrets) : { text: output, path: output, format: outFormat, keySecret: undefined, backingKeys: [] }, cache === 'unsafe')
        : await createTarget(output, outFormat, source.virtualSize, create, cache === 'unsafe', secrets, values.compress === true);
    try {
      if (bitmaps && !(await supportsBitmaps(target))) throw unsupported(`Format driver '${target.format}' does not support bitmaps`);
      if (skipCreate && target.virtualSize < source.virtualSize) throw usage('output file is smaller than input file');
      const progress = new Progress(ctx, values.progress === true && !values.quiet);
      await copyContents(source, target, {
        compress: values.compress === true,
        copyRange,
        outOfOrder: values['out-of-order'] === true,
        ...(coroutineCount === undefined ? {} : { chunksInFlight: coroutineCount }),
        ...(rate === undefined ? {} : { rateLimit: rate }),
        ...(values.salvage ? { onReadError: (offset: number, err: unknown) => values.quiet || ctx.stderr(`qcow2 convert: warning: error while reading offset ${offset}: ${errnoText(errnoOf(err))}\n`) } : {}),
        flushEachChunk: cache === 'writethrough',
        sparseSize: sparse,
        targetIsZero: !skipCreate || targetIsZero,
        ...(backing === undefined ? {} : { targetBacking: skipCreate ? {} : { ...(target.backing ? { size: target.backing.virtualSize } : {}) } }),
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.finish();
      if (bitmaps) await copyAllBitmaps(source, target, sourceBitmaps, ctx);
      await target.flush();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
  return 0;
}

/** IN, read-only, as it was at `snapshot` (-l) if given; qemu-img's messages when that fails. */
async function openSource(path: string, fmt: ImageFormat | undefined, keys: ImageKeys, operand: string, snapshot: SnapshotRef | undefined): Promise<BlockDevice> {
  return openAtSnapshot(
    path,
    fmt,
    snapshot,
    (at) => openImage(path, { ...(fmt ? { format: fmt } : {}), readOnly: true, ...keys, ...(at === undefined ? {} : { snapshot: at }) }),
    (err) => chainOpenError(`Could not open '${operand}': `, path, fmt, err),
  );
}

/** --target-image-opts: OUT is an option list (-O and it are exclusive, as in qemu-img's img_open). */
function targetArg(operand: string, outFormat: string | undefined, secrets: Secrets): ImageArg {
  if (outFormat !== undefined) throw usage('--image-opts and --format are mutually exclusive');
  return imageArg(operand, true, secrets);
}

/**
 * The new output's creation options: -o's, then -B and -F (qemu-img's add_old_style_options), the
 * size being the input's (as qemu-img, once the input is open). A raw output takes none.
 */
function createOptions(fmt: ImageFormat, options: string[], size: number, backing: string | undefined, backingFormat: string | undefined): CreateOptionSet {
  if (fmt !== 'qcow2') {
    if (options.length > 0) throw unsupported('convert: raw output takes no -o options');
    if (backing !== undefined) throw usage(`Backing file not supported for file format '${fmt}'`);
    if (backingFormat !== undefined) throw usage(`Backing file format not supported for file format '${fmt}'`);
    return parseCreateOptions([]);
  }
  const set = parseCreateOptions(options);
  set.set('size', String(size));
  if (backing !== undefined) set.set('backing_file', backing);
  if (backingFormat !== undefined) set.set('backing_fmt', backingFormat);
  return set;
}

/** The new output image, open over its backing file if it names one (qemu-img's message when that cannot be opened). */
async function createTarget(path: string, fmt: ImageFormat, size: number, set: CreateOptionSet, noFlush: boolean, secrets: Secrets, compress: boolean): Promise<BlockDevice> {
  if (fmt !== 'qcow2') return createOutput(path, fmt, size, { noFlush });
  const { size: _size, ...create } = typedCreateOptions(set);
  // qemu-img convert's refusal, before the output is created.
  if (compress && create.encrypt !== undefined) throw usage('Compression and encryption not supported at the same time');
  if (create.backingFormat !== undefined && create.backingFile === undefined) {
    throw usage(`${path}: error while converting qcow2: Backing format cannot be used without backing file`);
  }
  try {
    return await createOutput(path, fmt, size, { create, noFlush, secret: (id) => secrets.copy(id) });
  } catch (err) {
    throw await chainOpenError(`Could not open '${path}': `, path, fmt, err);
  }
}

/** -n: the output as it is, in -O's format (raw by default, as qemu-img), or as --target-image-opts gives it. */
async function openExisting(name: string, out: ImageArg, noFlush: boolean): Promise<BlockDevice> {
  const { path, format: fmt } = out;
  try {
    return await openImage(path, { ...(fmt === undefined ? {} : { format: fmt }), noFlush, ...keyOptions(out) });
  } catch (err) {
    throw explainOpenError(path, await chainOpenError(`Could not open '${name}': `, path, fmt, err));
  } finally {
    forgetSecrets(out);
  }
}

async function copyAllBitmaps(source: BlockDevice, target: BlockDevice, list: SourceBitmapInfo[], ctx: CliContext): Promise<void> {
  if (!isQcow2(source) || !isQcow2(target)) return;
  await copyBitmaps(source, target, list, (message) => ctx.stderr(`qcow2 convert: warning: ${message}\n`));
}
