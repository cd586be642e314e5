/**
 * `qcow2 bitmap (--add | --remove | --clear | --enable | --disable | --merge SOURCE)... [-g SIZE]
 * [-b SOURCE_FILE [-F SOURCE_FMT]] [-f FMT] IMAGE BITMAP`: what `qemu-img bitmap` (QEMU 7.2
 * img_bitmap) does. The operations run in the order given, on one bitmap; the first that fails
 * stops the rest ("Operation OP on bitmap NAME failed: REASON", exit 1) and those before it are
 * kept. `--add --disable` adds a disabled bitmap. `--merge SOURCE` takes bitmap SOURCE of the same
 * image, or of SOURCE_FILE with `-b` (opened by name, as qemu-img). Silent on success, as qemu-img.
 * `--object`/`--image-opts` (src/cli/image-opts.ts) open an encrypted IMAGE.
 */
import { parseArgs } from 'node:util';
import { openImage } from '../device/open.js';
import type { BitmapEdit, BlockDevice, PersistentBitmap } from '../engine/types.js';
import { isQcow2 } from '../engine/types.js';
import { isQcow2Error, Qcow2Error, unsupported, usage } from '../errors.js';
import { cvtnumFull } from '../units.js';
import { commandLineError } from './args.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { keyOpenError } from './open-error.js';
import { probeOrExplain } from './probe.js';

type Op = 'add' | 'remove' | 'clear' | 'enable' | 'disable' | 'merge';

export async function bitmap(args: string[], _ctx: CliContext): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: {
        add: { type: 'boolean', multiple: true },
        remove: { type: 'boolean', multiple: true },
        clear: { type: 'boolean', multiple: true },
        enable: { type: 'boolean', multiple: true },
        disable: { type: 'boolean', multiple: true },
        merge: { type: 'string', multiple: true },
        granularity: { type: 'string', short: 'g' },
        'source-file': { type: 'string', short: 'b' },
        'source-format': { type: 'string', short: 'F' },
        format: { type: 'string', short: 'f' },
        ...IMAGE_OPTS_OPTIONS,
      },
    });
  } catch (err) {
    throw commandLineError('bitmap', (err as Error).message);
  }
  const { values, positionals, tokens } = parsed;
  const ops: { op: Op; source?: string }[] = [];
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    if (t.name === 'merge') ops.push({ op: 'merge', source: t.value ?? '' });
    else if (['add', 'remove', 'clear', 'enable', 'disable'].includes(t.name)) ops.push({ op: t.name as Op });
  }
  if (ops.length === 0) throw usage('Need at least one of --add, --remove, --clear, --enable, --disable, or --merge');
  let granularity: number | undefined;
  if (values.granularity !== undefined) {
    const r = cvtnumFull('granularity', values.granularity);
    if ('error' in r) throw usage(r.error);
    // As qemu-img: 0 means the default.
    granularity = r.value === 0n ? undefined : Number(r.value);
  }
  const adds = ops.some((o) => o.op === 'add');
  if (granularity !== undefined && !adds) throw usage('granularity only supported with --add');
  const sourceFile = values['source-file'];
  if (values['source-format'] !== undefined && sourceFile === undefined) throw usage('-F only supported with -b');
  if (sourceFile !== undefined && !ops.some((o) => o.op === 'merge')) throw usage('Merge bitmap source file only supported with --merge');
  if (positionals.length !== 2) throw usage('Expecting filename and bitmap name');
  const [operand, name] = positionals as [string, string];
  const secrets = new Secrets(values.object);
  const image = imageArg(operand, values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = image.path;
  let device: BlockDevice;
  try {
    device = await openImage(filename, { format: image.format ?? formatOption(values.format).format ?? (await probeOrExplain(filename)), ...keyOptions(image) });
  } catch (err) {
    throw keyOpenError(image.text, err) ?? err;
  } finally {
    forgetSecrets(image);
  }
  let source: BlockDevice | undefined;
  try {
    if (!isQcow2(device)) throw unsupported(`Operation ${ops[0]!.op} on bitmap ${name} failed: a ${device.format} image has no persistent bitmaps`);
    if (sourceFile !== undefined) source = await openImage(sourceFile, { readOnly: true, ...formatOption(values['source-format']) });
    const from = source ?? device;
    for (const o of ops) {
      let edit: BitmapEdit;
      if (o.op === 'add') edit = { op: 'add', name, ...(granularity === undefined ? {} : { granularity }) };
      else if (o.op === 'merge') {
        const src = await sourceBitmap(from, o.source!, o.op, name);
        edit = { op: 'merge', name, source: src, sourceSize: from.virtualSize };
      } else edit = { op: o.op, name };
      try {
        await device.editBitmaps([edit]);
      } catch (err) {
        throw failed(o.op, name, err);
      }
    }
  } finally {
    try {
      await source?.close();
    } finally {
      await device.close();
    }
  }
  return 0;
}

function formatOption(format: string | undefined): { format?: 'qcow2' | 'raw' } {
  if (format === undefined) return {};
  if (format !== 'qcow2' && format !== 'raw') throw unsupported(`bitmap: format '${format}' is not supported (qcow2, raw)`);
  return { format };
}

/** The merge's source bitmap, or qemu-img's message when there is none by that name. */
async function sourceBitmap(from: BlockDevice, sourceName: string, op: Op, name: string): Promise<PersistentBitmap> {
  if (!isQcow2(from)) throw failed(op, name, usage(`Dirty bitmap '${sourceName}' not found`));
  try {
    return await from.readBitmap(sourceName);
  } catch (err) {
    if (isQcow2Error(err) && err.code === 'usage' && /not found/.test(err.message)) throw failed(op, name, usage(`Dirty bitmap '${sourceName}' not found`));
    throw failed(op, name, err);
  }
}

/** qemu-img's "Operation OP on bitmap NAME failed: REASON", keeping the reason's code. */
function failed(op: Op, name: string, err: unknown): unknown {
  if (!isQcow2Error(err)) return err;
  return new Qcow2Error(err.code, `Operation ${op} on bitmap ${name} failed: ${err.message}`, { cause: err });
}
