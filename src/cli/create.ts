/**
 * `qcow2 create [-q] [-f qcow2] [-o OPTIONS] [-b BACKING -F FMT] [-u] IMAGE [SIZE]`: a new image, laid
 * out byte for byte as `qemu-img create -f qcow2` lays it out, with the same checks in the same
 * order and the same `Formatting ...` line.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { createImage } from '../create/create.js';
import {
  BLOCK_DRIVERS,
  type CreateOptionSet,
  formattingLine,
  hasHelpOption,
  isValidOptionList,
  optionHelp,
  parseCreateOptions,
  parseImageSize,
  typedCreateOptions,
} from '../create/options.js';
import { isQcow2Error, unsupported, usage } from '../errors.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { parse } from './args.js';
import { IMAGE_OPTS_OPTIONS, Secrets } from './image-opts.js';
import { commandHelp } from './commands.js';
import type { CliContext } from './context.js';

const UNSET_SIZE = (1n << 64n) - 1n;

export async function create(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      options: { type: 'string', short: 'o', multiple: true },
      backing: { type: 'string', short: 'b' },
      'backing-format': { type: 'string', short: 'F' },
      unsafe: { type: 'boolean', short: 'u' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'create',
  );
  if (values['image-opts']) throw usage('create: --image-opts is not supported (give a file name)');
  if (values.help) {
    ctx.stdout(commandHelp('create'));
    return 0;
  }
  if (values.format !== undefined && values.format !== 'qcow2') {
    throw unsupported(`create: only qcow2 images can be created (-f ${values.format})`);
  }
  const lists = values.options ?? [];
  for (const list of lists) if (!isValidOptionList(list)) throw usage(`Invalid option list: ${list}`);
  if (lists.some(hasHelpOption)) {
    ctx.stdout(optionHelp());
    return 0;
  }
  const [image, sizeText, extra] = positionals;
  if (image === undefined) throw usage('Expecting image file name');
  const size = sizeText === undefined ? undefined : parseImageSize(sizeText);
  if (extra !== undefined) throw usage(`Unexpected argument: ${extra}`);

  const set = parseCreateOptions(lists);
  if (!set.has('size')) {
    if (size !== undefined) set.setNumber('size', size);
  } else if (size !== undefined) {
    throw usage('The image size must be specified only once');
  }
  // qemu-img reads a size of 2^64 - 1 as "no size given".
  if (set.get('size')?.number === UNSET_SIZE) set.entries.splice(0, set.entries.length, ...set.entries.filter((e) => e.name !== 'size'));
  if (values.backing !== undefined) set.set('backing_file', values.backing);
  if (values['backing-format'] !== undefined) set.set('backing_fmt', values['backing-format']);

  const backing = set.get('backing_file')?.text;
  const backingFormat = set.get('backing_fmt')?.text;
  if (backing !== undefined) {
    if (backing === image) throw usage('Trying to create an image with the same filename as the backing file');
    if (backing === '') throw usage('Expected backing file name, got empty string');
    if (!values.unsafe) {
      await openBacking(set, image, backing, backingFormat);
    } else if (backingFormat === undefined) {
      throw usage('Backing file specified without backing format');
    }
  }
  if (!set.has('size')) throw usage('Image creation needs a size parameter');

  if (!values.quiet) ctx.stdout(`${formattingLine(image, set)}\n`);
  const secrets = new Secrets(values.object);
  try {
    await createImage(image, typedCreateOptions(set), { secret: (id) => secrets.copy(id) });
  } finally {
    secrets.dispose();
  }
  return 0;
}

/**
 * Opens the backing file as qemu-img does (relative names are relative to the new image's
 * directory): it must exist and be of the given format; its size becomes the image size when none
 * was given. qcow2 and raw backing files are read; other formats only when the size is given.
 */
async function openBacking(set: CreateOptionSet, image: string, backing: string, format: string | undefined): Promise<void> {
  const path = isAbsolute(backing) ? backing : join(dirname(image), backing);
  if (format !== undefined && !BLOCK_DRIVERS.includes(format)) {
    throw usage(`Unknown driver '${format}': could not open backing image`);
  }
  let file: NodeFile;
  try {
    file = await NodeFile.open(path, { readOnly: true });
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    const reason = code === 'ENOENT' ? 'No such file or directory' : code ?? String(err);
    throw usage(`Could not open '${path}': ${reason}: could not open backing image`);
  }
  try {
    if (format === undefined) {
      const magic = await file.read(0, 4);
      const detected = magic.byteLength === 4 && magic[0] === 0x51 && magic[1] === 0x46 && magic[2] === 0x49 && magic[3] === 0xfb ? 'qcow2' : 'raw';
      throw usage(`Backing file specified without backing format (detected format of ${detected})`);
    }
    let backingSize: bigint | undefined;
    if (format === 'qcow2') {
      try {
        backingSize = (await readMetadata(file)).header.size;
      } catch (err) {
        const why = isQcow2Error(err) ? err.describe() : String(err);
        throw usage(`'${path}' is not a usable qcow2 image (${why}): could not open backing image`);
      }
    } else if (format === 'raw' || format === 'file') {
      backingSize = BigInt(Math.ceil((await file.size()) / 512) * 512);
    }
    if (!set.has('size')) {
      if (backingSize === undefined) {
        throw unsupported(`the size of a '${format}' backing file cannot be read here: give SIZE`);
      }
      set.setNumber('size', backingSize);
    }
  } finally {
    await file.close();
  }
}
