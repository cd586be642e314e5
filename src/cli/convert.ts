/**
 * `qcow2 convert [-f FMT] [-O raw|qcow2] [-o OPTIONS] [-B BACKING_FILE [-F BACKING_FMT]] [-n]
 * [--target-is-zero] [-S SPARSE_SIZE] [--bitmaps [--skip-broken-bitmaps]] [-c] [-p] [-q] [-t CACHE]
 * IN OUT`: copies the guest contents of IN (through its backing chain) into OUT, as `qemu-img
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
 * `--object secret,…` with `--image-opts` opens an encrypted IN; `-o encrypt.*` makes an encrypted OUT.
 * The copy itself is src/convert/copy.ts, which the library's convertImage runs too.
 */
import { DEFAULT_SPARSE_SIZE, MAX_SPARSE_SIZE, copyContents, createOutput } from '../convert/copy.js';
import { checkedSourceBitmaps, copyBitmaps, type SourceBitmapInfo, supportsBitmaps } from '../convert/bitmaps.js';
import { SECTOR } from '../convert/sparse.js';
import { type CreateOptionSet, parseCreateOptions, typedCreateOptions } from '../create/options.js';
import { openImage, type ImageFormat, type ImageKeys } from '../device/open.js';
import { type BlockDevice, isQcow2 } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { cvtnumFull } from '../units.js';
import { commandLineError, parse, type Parsed } from './args.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { cacheMode } from './cache-mode.js';
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
  ...IMAGE_OPTS_OPTIONS,
} as const;
type ConvertValues = Parsed<typeof CONVERT_OPTIONS>['values'];

export async function convert(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, CONVERT_OPTIONS, 'convert');
  const secrets = new Secrets(values.object);
  try {
    return await convertWith(ctx, values, positionals, secrets);
  } finally {
    secrets.dispose();
  }
}

async function convertWith(ctx: CliContext, values: ConvertValues, positionals: string[], secrets: Secrets): Promise<number> {
  // qemu-img's checks, in its order: the options first, then the images.
  const sparse = values.sparse === undefined ? DEFAULT_SPARSE_SIZE : sparseSize(values.sparse);
  const skipCreate = values['no-create'] === true;
  const bitmaps = values.bitmaps === true;
  const skipBroken = values['skip-broken-bitmaps'] === true;
  const options = values.options ?? [];
  if (skipBroken && !bitmaps) throw usage('Use of --skip-broken-bitmaps requires --bitmaps');
  if (skipCreate && options.length > 0) throw usage('-o has no effect when skipping image creation');
  const targetIsZero = values['target-is-zero'] === true;
  if (targetIsZero && !skipCreate) throw usage('--target-is-zero requires use of -n flag');
  if (positionals.length !== 2) throw commandLineError('convert', `expected an input and an output image, got ${positionals.length} names`);
  const [inputOperand, output] = positionals as [string, string];
  const outFormat = format(values['output-format'], 'output') ?? 'raw';
  // qemu-img convert writes its output with cache=unsafe unless told otherwise: no flushes at all.
  const cache = values.cache === undefined ? 'unsafe' : cacheMode('convert', values.cache);

  const image = imageArg(inputOperand, values['image-opts'] === true, secrets);
  let source: BlockDevice;
  try {
    source = await openSource(image.path, image.format ?? format(values.format, 'input'), keyOptions(image), image.text);
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

    const target = create === undefined ? await openExisting(output, outFormat, cache === 'unsafe') : await createTarget(output, outFormat, source.virtualSize, create, cache === 'unsafe', secrets, values.compress === true);
    try {
      if (bitmaps && !(await supportsBitmaps(target))) throw unsupported(`Format driver '${target.format}' does not support bitmaps`);
      if (skipCreate && target.virtualSize < source.virtualSize) throw usage('output file is smaller than input file');
      const progress = new Progress(ctx, values.progress === true && !values.quiet);
      await copyContents(source, target, {
        compress: values.compress === true,
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

async function openSource(path: string, fmt: ImageFormat | undefined, keys: ImageKeys, operand: string): Promise<BlockDevice> {
  try {
    return await openImage(path, { ...(fmt ? { format: fmt } : {}), readOnly: true, ...keys });
  } catch (err) {
    throw await chainOpenError(`Could not open '${operand}': `, path, fmt, err);
  }
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

/** -n: the output as it is, in -O's format (raw by default, as qemu-img). */
async function openExisting(path: string, fmt: ImageFormat, noFlush: boolean): Promise<BlockDevice> {
  try {
    return await openImage(path, { format: fmt, noFlush });
  } catch (err) {
    throw explainOpenError(path, await chainOpenError(`Could not open '${path}': `, path, fmt, err));
  }
}

async function copyAllBitmaps(source: BlockDevice, target: BlockDevice, list: SourceBitmapInfo[], ctx: CliContext): Promise<void> {
  if (!isQcow2(source) || !isQcow2(target)) return;
  await copyBitmaps(source, target, list, (message) => ctx.stderr(`qcow2 convert: warning: ${message}\n`));
}
