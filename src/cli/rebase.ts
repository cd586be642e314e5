/**
 * `qcow2 rebase [-f FMT] [-F BACKING_FMT] [-u] [-p] [-q] [-t CACHE] [-T SRC_CACHE] -b BACKING IMAGE`:
 * what `qemu-img rebase` (QEMU 7.2's img_rebase) does, prints and exits with, its checks in its
 * order and its messages as usage errors.
 *
 * - Safe mode (default): the image is opened over its old backing chain; the new backing file
 *   (BACKING resolved against the image's folder, under the linked-path rules; a layer of the old
 *   chain is reused as qemu-img reuses it) is opened read-only; every range the image does not
 *   allocate where the two differ gets the old content (src/rebase/keep-content.ts); then the
 *   header names the new backing file (src/qcow2/backing-file.ts). `-b ""` removes the backing file.
 * - Unsafe mode (`-u`): the old backing chain is not opened, nor the new one; only the names change.
 *   `-u` without `-b` removes the backing file, as qemu-img does.
 * - A backing file name without `-F` is refused when the header is changed ("backing format must be
 *   specified"), after safe mode's copy, as qemu-img 7.2 does.
 * - `-p` prints qemu-img's progress line on stdout, terminal or not, step for step as qemu-img.
 * - `-t`: writeback (default), writethrough (each write made durable) or unsafe (no flushes); the
 *   O_DIRECT modes are refused (src/cli/cache-mode.ts). `-T` is checked and otherwise unused: the
 *   backing files are only read.
 * - `--object`/`--image-opts` (src/cli/image-opts.ts) open an encrypted image and its encrypted
 *   backing chain (`backing.encrypt.key-secret`); the new backing file is opened by name, as
 *   qemu-img opens it, so an encrypted one cannot be read unless it is a layer of the old chain.
 */
import { realpath } from 'node:fs/promises';
import { type ImageKeys, openImage, probeFormat } from '../device/open.js';
import { linkedPath } from '../engine/linked-path.js';
import { type BlockDevice, isQcow2 } from '../engine/types.js';
import { BLOCK_DRIVERS } from '../create/options.js';
import { errnoOf, errnoText, isQcow2Error, unsupported, usage } from '../errors.js';
import { REBASE_CHUNK_BYTES } from '../limits.js';
import { keepGuestContent } from '../rebase/keep-content.js';
import { parse } from './args.js';
import { type CacheMode, cacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { chainOpenError } from './open-error.js';
import { probedRawWarning } from './probe.js';
import { QemuProgress } from './progress.js';

export async function rebase(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      'force-share': { type: 'boolean', short: 'U' },
      'backing-format': { type: 'string', short: 'F' },
      backing: { type: 'string', short: 'b' },
      unsafe: { type: 'boolean', short: 'u' },
      progress: { type: 'boolean', short: 'p' },
      quiet: { type: 'boolean', short: 'q' },
      cache: { type: 'string', short: 't' },
      'source-cache': { type: 'string', short: 'T' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'rebase',
  );
  const unsafe = values.unsafe === true;
  const backing = values.backing;
  const backingFormat = values['backing-format'];
  if (positionals.length !== 1 || positionals[0] === undefined) throw usage('Expecting one image file name');
  if (!unsafe && backing === undefined) throw usage('Must specify backing file (-b) or use unsafe mode (-u)');
  const secrets = new Secrets(values.object);
  const operand = imageArg(positionals[0], values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = operand.path;

  const progress = new QemuProgress(ctx, values.progress === true && values.quiet !== true, 2.0);
  progress.print(0, 100);
  try {
    const cache = checkedCacheMode(values.cache ?? 'writeback', 'Invalid cache option');
    checkedCacheMode(values['source-cache'] ?? 'writeback', 'Invalid source cache option', true);
    let image: BlockDevice;
    try {
      image = await openTarget(filename, operand.format ?? values.format, unsafe, cache, ctx, keyOptions(operand), operand.text);
    } finally {
      forgetSecrets(operand);
    }
    let newBacking: BlockDevice | undefined;
    let opened = false;
    try {
      if (backingFormat !== undefined && !BLOCK_DRIVERS.includes(backingFormat)) throw usage(`Invalid format name: '${backingFormat}'`);
      if (!unsafe && backing !== undefined) {
        let prefix: BlockDevice | undefined;
        if (backing !== '') {
          const path = linkedPath(filename, backing, 'backing file', {});
          prefix = await chainLayerAt(filename, image, path);
          if (prefix === undefined) {
            newBacking = await openNewBacking(backing, path, backingFormat);
            opened = true;
            await refuseLoop(filename, backing, newBacking, path);
          } else newBacking = prefix;
        }
        const size = image.virtualSize;
        const step = size === 0 ? 0 : Math.fround(100 / Math.fround(Math.floor(size / Math.min(size, REBASE_CHUNK_BYTES))));
        await keepGuestContent({ image, newBacking, prefix, fua: cache === 'writethrough', onStep: () => progress.print(step, 100) });
      }
      const changeError = await changeBacking(image, backing, backingFormat);
      progress.print(100, 0);
      if (changeError) throw changeError;
    } finally {
      try {
        if (opened) await newBacking?.close();
      } finally {
        await image.close();
      }
    }
  } finally {
    progress.end();
  }
  return 0;
}

/**
 * A cache mode, or qemu-img's message for a name it does not know. `readOnly` (-T): the O_DIRECT
 * modes are accepted too, the backing files being only read (through the page cache).
 */
function checkedCacheMode(value: string, message: string, readOnly = false): CacheMode {
  try {
    return cacheMode('rebase', value);
  } catch (err) {
    if (isQcow2Error(err) && err.code === 'usage') throw usage(`${message}: ${value}`);
    if (readOnly && isQcow2Error(err) && err.code === 'unsupported') return 'writeback';
    throw err;
  }
}

/** The image, writable, over its backing chain (none in unsafe mode), with img_open's messages. */
async function openTarget(filename: string, format: string | undefined, unsafe: boolean, cache: CacheMode, ctx: CliContext, keys: ImageKeys, operand: string): Promise<BlockDevice> {
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
    if (!BLOCK_DRIVERS.includes(format)) throw usage(`Could not open '${filename}': Unknown driver '${format}'`);
    throw unsupported(`rebase: only qcow2 and raw images can be rebased (-f ${format})`);
  }
  try {
    const fmt = format ?? (await probeFormat(filename));
    if (format === undefined && fmt === 'raw') ctx.stderr(`${probedRawWarning(filename)}\n`);
    return await openImage(filename, { format: fmt, ...(unsafe ? { backing: null } : {}), ...(cache === 'unsafe' ? { noFlush: true } : {}), ...keys });
  } catch (err) {
    throw await chainOpenError(`Could not open '${operand}': `, filename, format, err);
  }
}

/**
 * The new backing file, read-only over its own chain: with -F's format, else probed; with
 * qemu-img's message when it cannot be opened.
 */
async function openNewBacking(name: string, path: string, format: string | undefined): Promise<BlockDevice> {
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
    throw unsupported(`rebase: the new backing file can only be read as qcow2 or raw (-F ${format})`);
  }
  try {
    return await openImage(path, { format: format ?? (await probeFormat(path)), readOnly: true });
  } catch (err) {
    throw await chainOpenError(`Could not open new backing file '${name}': `, path, format, err);
  }
}

/** Each layer of a chain, from `device` (opened from `path`) down, with its file's real path. */
async function chainFiles(device: BlockDevice, path: string): Promise<{ layer: BlockDevice; real: string | undefined }[]> {
  const out: { layer: BlockDevice; real: string | undefined }[] = [];
  let at: BlockDevice | undefined = device;
  let atPath = path;
  while (at !== undefined) {
    out.push({ layer: at, real: await realpath(atPath).catch(() => undefined) });
    const below: BlockDevice | undefined = at.backing;
    const name = isQcow2(at) ? at.backingName : undefined;
    if (below === undefined || name === undefined) break;
    atPath = isQcow2(below) && below.path !== undefined ? below.path : linkedPath(atPath, name, 'backing file', {});
    at = below;
  }
  return out;
}

/**
 * The layer of the image's backing chain that is the file at `path` (the same file by real path),
 * as qemu-img finds it (bdrv_find_backing_image): it is then the new backing file.
 */
async function chainLayerAt(imagePath: string, image: BlockDevice, path: string): Promise<BlockDevice | undefined> {
  const target = await realpath(path).catch(() => undefined);
  if (target === undefined) return undefined;
  return (await chainFiles(image, imagePath)).slice(1).find((f) => f.real === target)?.layer;
}

/**
 * Refuses a new backing file whose chain holds the image itself (the chain would loop), with
 * qemu-img's first line: it fails there on its own image lock.
 */
async function refuseLoop(imagePath: string, name: string, newBacking: BlockDevice, path: string): Promise<void> {
  const image = await realpath(imagePath);
  const depth = (await chainFiles(newBacking, path)).findIndex((f) => f.real === image);
  if (depth >= 0) {
    throw usage(`Could not open new backing file '${name}': ${'Could not open backing file: '.repeat(depth)}Failed to get shared "write" lock`);
  }
}

/**
 * Names the new backing file in the image's header (qemu-img's bdrv_change_backing_file call).
 * Returns, rather than throws, qemu-img's error: it still moves the progress line to 100 first.
 */
async function changeBacking(image: BlockDevice, backing: string | undefined, backingFormat: string | undefined): Promise<unknown> {
  const name = backing === undefined || backing === '' ? undefined : backing;
  const format = name === undefined ? undefined : backingFormat;
  const fail = (reason: string, cause?: unknown) => usage(`Could not change the backing file to '${backing ?? '(null)'}': ${reason}`, cause === undefined ? {} : { cause });
  if (name !== undefined && format === undefined) return fail('backing format must be specified');
  if (!isQcow2(image)) return fail(errnoText('ENOTSUP'));
  try {
    await image.changeBackingFile(name, format);
  } catch (err) {
    if (!isQcow2Error(err) || err.code !== 'usage') throw err;
    const errno = errnoOf(err);
    return fail(errno === 'ENOSPC' ? 'No space left in the file header' : errnoText(errno), err);
  }
  return undefined;
}
