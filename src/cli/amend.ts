/**
 * `qcow2 amend [-f FMT] [-o OPTIONS] [-p] [-q] [-t CACHE] [--force] IMAGE`: what `qemu-img amend`
 * (QEMU 7.2 img_amend, then qcow2_amend_options) does to a qcow2 image, its checks in its order and
 * its messages as usage errors; nothing on stdout but `-o help`'s list (and progress with -p on a
 * terminal). The work is src/amend/amend.ts. `--object`/`--image-opts` (src/cli/image-opts.ts) open
 * an encrypted image; its encrypt.* options add and erase LUKS key slots (the secrets they name
 * are kept until amend is done, then zero-filled).
 */
import { openQcow2 } from '../device/open.js';
import { amendImage } from '../amend/amend.js';
import { amendOptionHelp, parseAmendOptions } from '../amend/options.js';
import { BLOCK_DRIVERS, hasHelpOption, isValidOptionList } from '../create/options.js';
import { unsupported, usage } from '../errors.js';
import { Qcow2Front } from '../qcow2/front.js';
import type { Qcow2State } from '../qcow2/state.js';
import { parse } from './args.js';
import { cacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { openOrExplain } from './open-error.js';
import { probedRawWarning, probeOrExplain } from './probe.js';
import { Progress } from './progress.js';

export async function amend(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      options: { type: 'string', short: 'o', multiple: true },
      progress: { type: 'boolean', short: 'p' },
      quiet: { type: 'boolean', short: 'q' },
      cache: { type: 'string', short: 't' },
      force: { type: 'boolean' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'amend',
  );
  const lists = values.options ?? [];
  for (const list of lists) if (!isValidOptionList(list)) throw usage(`Invalid option list: ${list}`);
  if (lists.length === 0) throw usage('Must specify options (-o)');
  const format = values.format;
  const help = lists.some(hasHelpOption);
  if (format === 'qcow2' && help) {
    ctx.stdout(amendOptionHelp());
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === undefined) throw usage('Expecting one image file name');
  const secrets = new Secrets(values.object);
  try {
    return await amendWith(positionals[0], values, lists, format, help, secrets, ctx);
  } finally {
    secrets.dispose();
  }
}

async function amendWith(
  operand: string,
  values: { 'image-opts'?: boolean; cache?: string; progress?: boolean; quiet?: boolean; force?: boolean },
  lists: string[],
  format: string | undefined,
  help: boolean,
  secrets: Secrets,
  ctx: CliContext,
): Promise<number> {
  const image = imageArg(operand, values['image-opts'] === true, secrets);
  const filename = image.path;
  const cache = values.cache ?? 'writeback';
  try {
    cacheMode('amend', cache);
  } catch (err) {
    if ((err as { code?: string }).code === 'usage') throw usage(`Invalid cache option: ${cache}`);
    throw err;
  }
  if (image.format === 'raw') throw usage("Format driver 'raw' does not support option amendment");
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
    if (!BLOCK_DRIVERS.includes(format)) throw usage(`Could not open '${filename}': Unknown driver '${format}'`);
    throw unsupported(`amend: only qcow2 images can be amended (-f ${format})`);
  }
  const fmt = image.format ?? format ?? (await probeOrExplain(filename));
  if (format === undefined && fmt === 'raw') ctx.stderr(`${probedRawWarning(filename)}\n`);
  if (fmt !== 'qcow2') throw usage("Format driver 'raw' does not support option amendment");
  let device;
  try {
    device = await openOrExplain(filename, () => openQcow2(filename, { ...(cache === 'unsafe' ? { noFlush: true } : {}), ...keyOptions(image) }), image.text);
  } catch (err) {
    forgetSecrets(image);
    throw err;
  }
  try {
    if (help) {
      ctx.stdout(amendOptionHelp());
      return 0;
    }
    const request = parseAmendOptions(lists);
    if (!(device instanceof Qcow2Front)) throw unsupported('amend: this image is not open on a qcow2 engine');
    const progress = new Progress(ctx, values.progress === true && values.quiet !== true);
    progress.update(0, 1);
    try {
      await amendImage(device as Qcow2Front<Qcow2State>, request, {
        onProgress: (done, total) => progress.update(done, total),
        force: values.force === true,
        secrets: {
          // QEMU finds the master key with the secret the image was opened with.
          keySecret: () => {
            if (image.keySecret === undefined) throw usage("Parameter 'encrypt.key-secret' is required for cipher");
            return Buffer.from(image.keySecret);
          },
          secret: (id) => secrets.copy(id),
        },
      });
    } finally {
      progress.finish();
    }
  } finally {
    forgetSecrets(image);
    await device.close();
  }
  return 0;
}
