/**
 * `qcow2 dd [-f FMT] [-O OUTPUT_FMT] [bs=BLOCK_SIZE] [count=BLOCKS] [skip=BLOCKS] if=INPUT of=OUTPUT`:
 * what `qemu-img dd` (QEMU 7.2, img_dd) does. The operands are read in order, the first bad one
 * failing with qemu-img's message; the input is opened (its format probed unless -f), then the
 * output is created (raw by default, or qcow2, through src/create) with the input's size cut to
 * count*bs when that is smaller, less the skipped skip*bs bytes; then those bytes are copied.
 *
 * As in qemu-img, `count` limits the input before `skip` is taken off it (count=2 skip=1 copies
 * one block), and skipping past the input's end creates an empty output, warns, and succeeds.
 * `--object`/`--image-opts` (src/cli/image-opts.ts) open an encrypted input, as qemu-img's.
 */
import { createOutput } from '../convert/copy.js';
import { copyRange } from '../convert/range-copy.js';
import { BLOCK_DRIVERS } from '../create/options.js';
import { openImage, type ImageFormat } from '../device/open.js';
import { unsupported, usage } from '../errors.js';
import { INT64_MAX } from '../limits.js';
import { cvtnumFull } from '../units.js';
import { parse } from './args.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { openOrExplain } from './open-error.js';

/** C's INT_MAX: the largest block size qemu-img takes. */
const INT_MAX = 2n ** 31n - 1n;

interface Operands {
  bs: bigint;
  count: bigint | undefined;
  skip: bigint | undefined;
  input: string | undefined;
  output: string | undefined;
}

function number(name: string, text: string, max = INT64_MAX, min = 0n): bigint {
  const r = cvtnumFull(name, text, max, min);
  if ('error' in r) throw usage(r.error);
  return r.value;
}

/** The operands, read in order as img_dd reads them. */
export function parseDdOperands(words: readonly string[]): Operands {
  const ops: Operands = { bs: 512n, count: undefined, skip: undefined, input: undefined, output: undefined };
  for (const word of words) {
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (eq < 0) throw usage(`unrecognized operand ${word}`);
    switch (name) {
      case 'bs':
        ops.bs = number('bs', value, INT_MAX, 1n);
        break;
      case 'count':
        ops.count = number('count', value);
        break;
      case 'skip':
        ops.skip = number('skip', value);
        break;
      case 'if':
        ops.input = value;
        break;
      case 'of':
        ops.output = value;
        break;
      default:
        throw usage(`unrecognized operand ${name}`);
    }
  }
  return ops;
}

/**
 * Where the copy starts in the input and how long the output is: the input's size, cut to
 * count*bs when that is smaller; skip*bs off its start, or (past its end) an empty output.
 */
export function ddExtent(inputSize: bigint, ops: Pick<Operands, 'bs' | 'count' | 'skip'>): { start: bigint; length: bigint; skippedPastEnd: boolean } {
  let size = inputSize;
  if (ops.count !== undefined && ops.count <= INT64_MAX / ops.bs && ops.count * ops.bs < size) size = ops.count * ops.bs;
  const skip = ops.skip ?? 0n;
  if (skip > INT64_MAX / ops.bs || size < skip * ops.bs) return { start: size, length: 0n, skippedPastEnd: true };
  return { start: skip * ops.bs, length: size - skip * ops.bs, skippedPastEnd: false };
}

function inputFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw unsupported(`dd: only qcow2 and raw images can be read (-f ${value})`);
}

export async function dd(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      'output-format': { type: 'string', short: 'O' },
      'force-share': { type: 'boolean', short: 'U' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'dd',
  );
  const ops = parseDdOperands(positionals);
  if (ops.input === undefined || ops.output === undefined) throw usage('Must specify both input and output files');
  const { output } = ops;
  const secrets = new Secrets(values.object);
  const image = imageArg(ops.input, values['image-opts'] === true, secrets);
  secrets.dispose();
  const input = image.path;
  const format = image.format ?? inputFormat(values.format);
  if (input === '') throw usage("Could not open '': The 'file' block driver requires a file name");
  let source;
  try {
    source = await openOrExplain(input, () => openImage(input, { ...(format ? { format } : {}), readOnly: true, ...keyOptions(image) }), image.text);
  } finally {
    forgetSecrets(image);
  }
  try {
    const outFormat = values['output-format'] ?? 'raw';
    if (outFormat !== 'raw' && outFormat !== 'qcow2') {
      if (BLOCK_DRIVERS.includes(outFormat)) throw unsupported(`dd: only qcow2 and raw outputs can be written (-O ${outFormat})`);
      throw usage('Unknown file format');
    }
    const { start, length, skippedPastEnd } = ddExtent(BigInt(source.virtualSize), ops);
    const target = await createOutput(output, outFormat, Number(length));
    try {
      // qemu-img warns once the output exists, and goes on to copy nothing.
      if (skippedPastEnd) ctx.stderr(`qcow2 dd: ${input}: cannot skip to specified offset\n`);
      await copyRange(source, Number(start), target, 0, Number(length));
      await target.flush();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
  return 0;
}
