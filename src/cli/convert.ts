/**
 * `qcow2 convert [-f FMT] [-O raw|qcow2] [-o OPTIONS] [-c] [-p] [-q] IN OUT`: copies the guest
 * contents of IN (through its backing chain) into a new image, leaving all-zero areas unallocated,
 * as `qemu-img convert` does. `-c` writes compressed clusters; `-p` shows progress on a terminal.
 */
import { createImage } from '../create/create.js';
import { parseCreateOptions, typedCreateOptions } from '../create/options.js';
import { contentExtents } from '../engine/chain.js';
import { openImage, openQcow2, type ImageFormat } from '../engine/open.js';
import { RawDevice } from '../engine/raw.js';
import type { BlockDevice, Qcow2Device } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { NodeFile } from '../io/node-file.js';
import { parse } from './args.js';
import type { CliContext } from './context.js';
import { Progress } from './progress.js';

const CHUNK = 1 << 20;
/** Guest bytes whose map is asked for at once. */
const WINDOW = 1 << 30;

function format(value: string | undefined, what: string): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw usage(`convert: unknown ${what} format '${value}'`);
}

export async function convert(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      'output-format': { type: 'string', short: 'O' },
      options: { type: 'string', short: 'o', multiple: true },
      compress: { type: 'boolean', short: 'c' },
      progress: { type: 'boolean', short: 'p' },
      quiet: { type: 'boolean', short: 'q' },
      'force-share': { type: 'boolean', short: 'U' },
    },
    'convert',
  );
  if (positionals.length !== 2) throw usage(`convert: expected an input and an output image, got ${positionals.length} names`);
  const [input, output] = positionals as [string, string];
  const outFormat = format(values['output-format'], 'output') ?? 'raw';
  if (values.compress && outFormat !== 'qcow2') throw unsupported('convert: -c needs an output format that supports compression (qcow2)');
  if (outFormat === 'raw' && values.options?.length) throw unsupported('convert: raw output takes no -o options');
  const source = await openImage(input, { format: format(values.format, 'input'), readOnly: true });
  try {
    const target = await openTarget(output, outFormat, source.virtualSize, values.options ?? []);
    try {
      await copy(source, target, values.compress === true, new Progress(ctx, values.progress === true && !values.quiet));
      await target.flush();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
  return 0;
}

async function openTarget(path: string, fmt: ImageFormat, size: number, options: string[]): Promise<BlockDevice> {
  if (fmt === 'qcow2') {
    const set = parseCreateOptions(options);
    set.set('size', String(size));
    await createImage(path, typedCreateOptions(set));
    return openQcow2(path);
  }
  const file = await NodeFile.open(path, { create: true });
  await file.truncate(size);
  return RawDevice.over(file);
}

/**
 * Copies the data the source chain holds, in whole units (clusters when compressing), skipping
 * what the chain says is zero and any unit that reads as all zeros.
 */
async function copy(source: BlockDevice, target: BlockDevice, compress: boolean, progress: Progress): Promise<void> {
  const size = source.virtualSize;
  const unit = compress ? (target as Qcow2Device).clusterSize : 65536;
  let done = 0; // everything below has been copied
  for (let base = 0; base < size; base += WINDOW) {
    for (const e of await contentExtents(source, base, Math.min(WINDOW, size - base))) {
      if (e.zero) continue;
      const from = Math.max(done, Math.floor(e.start / unit) * unit);
      const to = Math.min(size, Math.ceil((e.start + e.length) / unit) * unit);
      for (let pos = from; pos < to; pos += CHUNK) {
        const n = Math.min(CHUNK, to - pos);
        const data = await source.read(pos, n);
        for (let at = 0; at < n; at += unit) {
          const piece = data.subarray(at, Math.min(at + unit, n));
          if (isZero(piece)) continue;
          if (compress) await (target as Qcow2Device).writeCompressed(pos + at, piece);
          else await target.write(pos + at, piece);
        }
        progress.update(pos + n, size);
      }
      done = Math.max(done, to);
    }
    progress.update(Math.min(base + WINDOW, size), size);
  }
  progress.finish();
}

function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}
