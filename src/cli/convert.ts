/**
 * `qcow2 convert [-f FMT] [-O raw|qcow2] [-o OPTIONS] [-c] [-p] [-q] [-t CACHE] IN OUT`: copies the guest
 * contents of IN (through its backing chain) into a new image, leaving all-zero areas unallocated,
 * as `qemu-img convert` does. `-c` writes compressed clusters; `-p` shows progress on a terminal.
 * `-t CACHE` is the output's cache mode, `unsafe` by default as in qemu-img convert: the output
 * is never flushed, and is as durable as the page cache makes it (`-t writeback` flushes once at
 * the end, `-t writethrough` after every chunk). The copy itself is src/convert/copy.ts, which the
 * library's convertImage runs too.
 */
import { copyContents, createOutput } from '../convert/copy.js';
import { parseCreateOptions, typedCreateOptions } from '../create/options.js';
import { openImage, type ImageFormat } from '../device/open.js';
import type { BlockDevice } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { commandLineError, parse, type Parsed } from './args.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, Secrets } from './image-opts.js';
import { cacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { Progress } from './progress.js';

function format(value: string | undefined, what: string): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw usage(`convert: unknown ${what} format '${value}'`);
}

const CONVERT_OPTIONS = {
  format: { type: 'string', short: 'f' },
  'output-format': { type: 'string', short: 'O' },
  options: { type: 'string', short: 'o', multiple: true },
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
  if (positionals.length !== 2) throw commandLineError('convert', `expected an input and an output image, got ${positionals.length} names`);
  const [inputOperand, output] = positionals as [string, string];
  const secrets = new Secrets(values.object);
  try {
    return await convertWith(ctx, values, inputOperand, output, secrets);
  } finally {
    secrets.dispose();
  }
}

async function convertWith(ctx: CliContext, values: ConvertValues, inputOperand: string, output: string, secrets: Secrets): Promise<number> {
  const image = imageArg(inputOperand, values['image-opts'] === true, secrets);
  const input = image.path;
  const outFormat = format(values['output-format'], 'output') ?? 'raw';
  if (values.compress && outFormat !== 'qcow2') throw unsupported('convert: -c needs an output format that supports compression (qcow2)');
  if (outFormat === 'raw' && values.options?.length) throw unsupported('convert: raw output takes no -o options');
  // qemu-img convert writes its output with cache=unsafe unless told otherwise: no flushes at all.
  const cache = values.cache === undefined ? 'unsafe' : cacheMode('convert', values.cache);
  let source: BlockDevice;
  try {
    source = await openImage(input, { format: image.format ?? format(values.format, 'input'), readOnly: true, ...(image.keySecret ? { keySecret: image.keySecret } : {}) });
  } finally {
    forgetSecrets(image);
  }
  try {
    const target = await openTarget(output, outFormat, source.virtualSize, values.options ?? [], cache === 'unsafe', secrets, values.compress === true);
    try {
      const progress = new Progress(ctx, values.progress === true && !values.quiet);
      await copyContents(source, target, {
        compress: values.compress === true,
        flushEachChunk: cache === 'writethrough',
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.finish();
      await target.flush();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
  return 0;
}

/** The output image: its -o options are read once the input's size is known (as qemu-img does). */
async function openTarget(path: string, fmt: ImageFormat, size: number, options: string[], noFlush: boolean, secrets: Secrets, compress: boolean): Promise<BlockDevice> {
  if (fmt !== 'qcow2') return createOutput(path, fmt, size, { noFlush });
  const set = parseCreateOptions(options);
  set.set('size', String(size));
  const { size: _size, ...create } = typedCreateOptions(set);
  // qemu-img convert's refusal, before the output is created.
  if (compress && create.encrypt !== undefined) throw usage('Compression and encryption not supported at the same time');
  return createOutput(path, fmt, size, { create, noFlush, secret: (id) => secrets.copy(id) });
}
