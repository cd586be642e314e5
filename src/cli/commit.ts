/**
 * `qcow2 commit [-q] [-f FMT] [-t CACHE] [-b BASE] [-r RATE_LIMIT] [-d] [-p] FILENAME`: what
 * `qemu-img commit` (QEMU 7.2 img_commit) does and prints: its checks in its order, its messages as
 * usage errors, "Image committed." unless -q. The work is src/commit/commit.ts.
 *
 * `-r` limits the bytes copied a second, as qemu-img's commit job does (zero writes not counted);
 * `-p` shows progress on a terminal only. `--object`/`--image-opts` (src/cli/image-opts.ts) open an
 * encrypted image and its encrypted backing chain (`backing.encrypt.key-secret`), base included.
 */
import { access } from 'node:fs/promises';
import { commitImage } from '../commit/commit.js';
import type { ImageFormat } from '../device/open.js';
import { unsupported, usage } from '../errors.js';
import { cvtnumFull } from '../units.js';
import { parse } from './args.js';
import { cacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { keyOpenError, notQcow2Error, openOrExplain } from './open-error.js';
import { Progress } from './progress.js';

function imageFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw unsupported(`commit: only qcow2 and raw images can be committed (-f ${value})`);
}

export async function commit(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      format: { type: 'string', short: 'f' },
      cache: { type: 'string', short: 't' },
      base: { type: 'string', short: 'b' },
      drop: { type: 'boolean', short: 'd' },
      progress: { type: 'boolean', short: 'p' },
      quiet: { type: 'boolean', short: 'q' },
      'rate-limit': { type: 'string', short: 'r' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'commit',
  );
  let rateLimit: number | undefined;
  if (values['rate-limit'] !== undefined) {
    const r = cvtnumFull('rate limit', values['rate-limit']);
    if ('error' in r) throw usage(r.error);
    // Past 2^53 bytes a second is no limit at all.
    if (r.value <= BigInt(Number.MAX_SAFE_INTEGER)) rateLimit = Number(r.value);
  }
  if (positionals.length !== 1 || positionals[0] === undefined) throw usage('Expecting one image file name');
  const secrets = new Secrets(values.object);
  const image = imageArg(positionals[0], values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = image.path;
  const cache = values.cache === undefined ? 'writeback' : cacheValue(values.cache);
  const format = image.format ?? imageFormat(values.format);
  const progress = new Progress(ctx, values.progress === true && !values.quiet);
  try {
    await openOrExplain(filename, () => access(filename));
    await commitImage(filename, {
      keys: keyOptions(image),
      ...(format ? { format } : {}),
      ...(values.base !== undefined ? { base: values.base } : {}),
      drop: values.drop === true,
      ...(rateLimit ? { rateLimit } : {}),
      noFlush: cache === 'unsafe',
      onProgress: (done, total) => progress.update(done, total),
    });
  } catch (err) {
    // Only the top is opened with a format the user chose: a bad magic is the top's.
    throw notQcow2Error(filename, err) ?? keyOpenError(image.text, err) ?? err;
  } finally {
    forgetSecrets(image);
  }
  progress.finish();
  if (!values.quiet) ctx.stdout('Image committed.\n');
  return 0;
}

/** qemu-img's message for a cache mode it does not know; ours for those we do not run. */
function cacheValue(value: string): ReturnType<typeof cacheMode> {
  try {
    return cacheMode('commit', value);
  } catch (err) {
    if ((err as { code?: string }).code === 'usage') throw usage(`Invalid cache option: ${value}`);
    throw err;
  }
}
