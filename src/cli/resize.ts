/**
 * `qcow2 resize [-f FMT] [--shrink] [--preallocation=MODE] [-q] IMAGE [+|-]SIZE`: what `qemu-img
 * resize` (QEMU 7.2 img_resize, then qcow2_co_truncate or file-posix's truncate) does and prints:
 * "Image resized.", and qemu-img's checks in its order, its messages as usage errors.
 *
 * Implemented: raw images (grow and shrink; preallocation off, falloc, full) and qcow2 images (grow
 * with every preallocation mode, encrypted ones included, shrink; see src/qcow2/resize.ts).
 * Persistent bitmaps follow the new size (the new area
 * clean), as QEMU's; an image with an inconsistent (in_use) bitmap is refused, as QEMU refuses it.
 */
import { stat } from 'node:fs/promises';
import { openImage } from '../device/open.js';
import { isQcow2 } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { INCOMPAT_EXTL2 } from '../format/constants.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { resizeRawFile } from '../io/raw-resize.js';
import { checkNewSize } from '../qcow2/resize.js';
import { qemuStrtosz } from '../units.js';
import { commandLineError, parse } from './args.js';
import { keyOpenError } from './open-error.js';
import { probedRawWarning, probeOrExplain } from './probe.js';
import type { CliContext } from './context.js';
import type { BlockDevice } from '../engine/types.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';

const PREALLOCATION_MODES = ['off', 'metadata', 'falloc', 'full'] as const;
type Preallocation = (typeof PREALLOCATION_MODES)[number];

export async function resize(args: string[], ctx: CliContext): Promise<number> {
  // As qemu-img: the last word is the size, taken off before the options (so '-1G' is no option).
  if (args.length < 2) throw usage('Not enough arguments');
  const sizeText = args[args.length - 1] ?? '';
  const { values, positionals } = parse(
    args.slice(0, -1),
    {
      format: { type: 'string', short: 'f' },
      quiet: { type: 'boolean', short: 'q' },
      preallocation: { type: 'string' },
      shrink: { type: 'boolean' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'resize',
  );
  const prealloc = (values.preallocation ?? 'off') as Preallocation;
  if (!PREALLOCATION_MODES.includes(prealloc)) throw usage(`Invalid preallocation mode '${values.preallocation}'`);
  if (positionals.length !== 1 || positionals[0] === undefined) throw usage('Expecting image file name and size');
  const secrets = new Secrets(values.object);
  const image = imageArg(positionals[0], values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = image.path;
  const format = image.format ?? values.format;
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
    throw unsupported(`resize: only qcow2 and raw images can be resized (-f ${format})`);
  }

  const relative = sizeText.startsWith('+') ? 1n : sizeText.startsWith('-') ? -1n : 0n;
  const parsed = qemuStrtosz(relative === 0n ? sizeText : sizeText.slice(1));
  if (!parsed.ok && parsed.error === 'range') throw usage(`Value '${sizeText}' is out of range for parameter 'size'`);
  if (!parsed.ok) {
    throw usage(
      "Parameter 'size' expects a non-negative number below 2^64 (optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- and exabytes, respectively)",
    );
  }

  const fmt = format ?? (await probeOrExplain(filename));
  if (format === undefined && fmt === 'raw') ctx.stderr(`${probedRawWarning(filename)}\n`);
  // A raw image's length is its file's, rounded up to 512-byte sectors (bdrv_getlength).
  let device: BlockDevice | undefined;
  try {
    device = fmt === 'qcow2' ? await openImage(filename, { format: fmt, ...keyOptions(image) }) : undefined;
  } catch (err) {
    throw keyOpenError(image.text, err) ?? err;
  } finally {
    forgetSecrets(image);
  }
  try {
    const current = BigInt(device ? device.virtualSize : Math.ceil((await stat(filename)).size / 512) * 512);
    const total = BigInt.asIntN(64, relative === 0n ? parsed.value : current + relative * parsed.value);
    if (total <= 0n) throw usage('New image size must be positive');
    if (total <= current && prealloc !== 'off') throw usage('Preallocation can only be used for growing images');
    if (total < current && !values.shrink) {
      throw usage(
        "Use the --shrink option to perform a shrink operation. (warning: Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there.)",
      );
    }
    if (device === undefined) {
      if (prealloc === 'metadata') throw usage('Unsupported preallocation mode: metadata');
      await resizeRawFile(filename, safeSize(total), prealloc);
    } else {
      await checkQcow2Resize(filename, isQcow2(device) ? device.clusterSize : 65536, total);
      const size = safeSize(total);
      if (isQcow2(device)) await device.resize(size, { preallocation: prealloc });
      else await device.resize(size);
      await device.flush();
    }
  } finally {
    await device?.close();
  }
  if (!values.quiet) ctx.stdout('Image resized.\n');
  return 0;
}

/** Sizes are JavaScript numbers in the engines: 2^53 bytes at most. */
function safeSize(total: bigint): number {
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw unsupported(`resize: sizes above ${Number.MAX_SAFE_INTEGER} bytes are not supported`);
  return Number(total);
}

/** qcow2_co_truncate's checks, in its order. */
async function checkQcow2Resize(filename: string, clusterSize: number, total: bigint): Promise<void> {
  const file = await NodeFile.open(filename, { readOnly: true });
  try {
    const meta = await readMetadata(file);
    checkNewSize(
      { version: meta.header.version, snapshots: meta.snapshots.length, clusterSize, extendedL2: (meta.header.incompatibleFeatures & INCOMPAT_EXTL2) !== 0n },
      total,
    );
  } finally {
    await file.close();
  }
}
