/**
 * `qcow2 map [--output=human|json] [-f FMT] [--start-offset=N] [--max-length=N] IMAGE`: what
 * `qemu-img map` (QEMU 7.2) prints, byte for byte.
 */
import { usage } from '../errors.js';
import { holesSupported } from '../map/holes.js';
import { writeMap } from '../map/map.js';
import { openForMap } from '../map/open.js';
import { onePositional, outputFormat, parse } from './args.js';
import type { CliContext } from './context.js';
import { keyOpenError } from './open-error.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';

export async function map(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      output: { type: 'string' },
      format: { type: 'string', short: 'f' },
      'force-share': { type: 'boolean', short: 'U' },
      'start-offset': { type: 'string' },
      'max-length': { type: 'string' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'map',
  );
  const output = outputFormat(values.output, 'map');
  const secrets = new Secrets(values.object);
  const image = imageArg(onePositional(positionals, 'image', 'map'), values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = image.path;
  const format = image.format ?? values.format;
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') throw usage(`map: unknown format '${format}' (qcow2 or raw)`);
  const startOffset = values['start-offset'] === undefined ? undefined : size(values['start-offset'], 'start offset');
  const maxLength = values['max-length'] === undefined ? undefined : size(values['max-length'], 'max length');
  if (!holesSupported()) {
    ctx.stderr('qcow2 map: warning: the native seek addon is not built, so holes in files are not seen (node native/build.mjs)\n');
  }
  let opened: Awaited<ReturnType<typeof openForMap>>;
  try {
    opened = await openForMap(filename, format, keyOptions(image));
  } catch (err) {
    throw keyOpenError(image.text, err) ?? err;
  } finally {
    forgetSecrets(image);
  }
  try {
    // Collect and write in pieces so a huge map streams, and so the human table keeps the lines
    // before a compressed cluster when that stops it.
    let buffered = '';
    const write = (text: string) => {
      buffered += text;
      if (buffered.length >= 1 << 16) {
        ctx.stdout(buffered);
        buffered = '';
      }
    };
    try {
      await writeMap(opened.top, { output, ...(startOffset === undefined ? {} : { startOffset }), ...(maxLength === undefined ? {} : { maxLength }) }, write);
    } finally {
      if (buffered) ctx.stdout(buffered);
    }
    return 0;
  } finally {
    await opened.close();
  }
}

/** qemu's cvtnum for offsets: a non-negative integer with an optional binary suffix (k, M, G, T, P, E). */
function size(text: string, what: string): number {
  const m = /^(\d+)([kKmMgGtTpPeE]?)[bB]?$/.exec(text.trim());
  const power = m ? ' kmgtpe'.indexOf((m[2] || ' ').toLowerCase()) : -1;
  const value = m && power >= 0 ? Number(m[1]) * 1024 ** power : NaN;
  if (!Number.isSafeInteger(value)) throw usage(`map: invalid ${what} '${text}': a non-negative integer is expected`);
  return value;
}
