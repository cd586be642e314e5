/**
 * `qcow2 compare [-f FMT] [-F FMT] [-s] [-q] A B`: compares guest contents as `qemu-img compare`
 * does — exit 0 identical, 1 different, 2 an image cannot be opened, 4 a read failed. Images of
 * different sizes are equal when the extra part of the larger one reads as zeros (not with -s).
 * `-T SRC_CACHE` takes qemu-img's cache mode names (exit 2 for another); the images are read
 * through the page cache whatever the mode.
 */
import type { BlockDevice } from '../engine/types.js';
import { openImage, type ImageFormat } from '../device/open.js';
import { isQcow2Error, usage } from '../errors.js';
import { COPY_CHUNK_BYTES } from '../limits.js';
import { commandLineError, parse } from './args.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, type ImageArg, imageArg, keyOptions, Secrets } from './image-opts.js';
import { sourceCacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';

const CHUNK = COPY_CHUNK_BYTES;

function format(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw usage(`compare: unknown format '${value}'`);
}

export async function compare(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      'second-format': { type: 'string', short: 'F' },
      strict: { type: 'boolean', short: 's' },
      quiet: { type: 'boolean', short: 'q' },
      progress: { type: 'boolean', short: 'p' },
      'force-share': { type: 'boolean', short: 'U' },
      cache: { type: 'string', short: 'T' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'compare',
  );
  if (positionals.length !== 2) throw commandLineError('compare', `expected two images, got ${positionals.length}`);
  try {
    if (values.cache !== undefined) sourceCacheMode(values.cache);
  } catch (err) {
    // qemu-img compare: exit status 2 for this too.
    ctx.stderr(`qcow2 compare: ${isQcow2Error(err) ? err.describe() : (err as Error).message}\n`);
    return 2;
  }
  const secrets = new Secrets(values.object);
  let images: ImageArg[];
  try {
    images = positionals.map((p) => imageArg(p, values['image-opts'] === true, secrets));
  } catch (err) {
    // qemu-img compare: an image it cannot open is exit status 2.
    ctx.stderr(`qcow2 compare: ${isQcow2Error(err) ? err.describe() : (err as Error).message}\n`);
    return 2;
  } finally {
    secrets.dispose();
  }
  const say = (line: string) => values.quiet || ctx.stdout(`${line}\n`);
  const opened: BlockDevice[] = [];
  try {
    for (const [i, image] of images.entries()) {
      const path = image.path;
      try {
        const fmt = image.format ?? format(i === 0 ? values.format : values['second-format']);
        opened.push(await openImage(path, { format: fmt, readOnly: true, ...keyOptions(image) }));
      } catch (err) {
        forgetSecrets(...images);
        ctx.stderr(`qcow2 compare: cannot open '${path}': ${isQcow2Error(err) ? err.describe() : (err as Error).message}\n`);
        return 2;
      }
    }
    forgetSecrets(...images);
    const [a, b] = opened as [BlockDevice, BlockDevice];
    if (values.strict && a.virtualSize !== b.virtualSize) {
      say('Strict mode: Image size mismatch!');
      return 1;
    }
    try {
      const common = Math.min(a.virtualSize, b.virtualSize);
      const mismatch = await firstMismatch(common, (o, n) => a.read(o, n), (o, n) => b.read(o, n));
      if (mismatch >= 0) {
        say(`Content mismatch at offset ${mismatch}!`);
        return 1;
      }
      if (a.virtualSize !== b.virtualSize) {
        say('Warning: Image size mismatch!');
        const larger = a.virtualSize > b.virtualSize ? a : b;
        const extra = await firstMismatch(larger.virtualSize - common, (o, n) => larger.read(common + o, n), async (_o, n) => new Uint8Array(n));
        if (extra >= 0) {
          say(`Content mismatch at offset ${common + extra}!`);
          return 1;
        }
      }
    } catch (err) {
      ctx.stderr(`qcow2 compare: read failed: ${isQcow2Error(err) ? err.describe() : (err as Error).message}\n`);
      return 4;
    }
    say('Images are identical.');
    return 0;
  } finally {
    for (const d of opened) await d.close();
  }
}

/** First differing 512-byte sector (as qemu-img reports it), or -1. */
async function firstMismatch(
  length: number,
  readA: (offset: number, n: number) => Promise<Uint8Array>,
  readB: (offset: number, n: number) => Promise<Uint8Array>,
): Promise<number> {
  for (let pos = 0; pos < length; pos += CHUNK) {
    const n = Math.min(CHUNK, length - pos);
    const [x, y] = [await readA(pos, n), await readB(pos, n)];
    if (Buffer.compare(Buffer.from(x.buffer, x.byteOffset, n), Buffer.from(y.buffer, y.byteOffset, n)) === 0) continue;
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return Math.floor((pos + i) / 512) * 512;
  }
  return -1;
}
