/**
 * `qcow2 check [-r leaks|all] [--output=human|json] [-f qcow2] [-q] [-T SRC_CACHE] IMAGE`: what
 * `qemu-img check` reports and repairs. `-T` takes qemu-img's cache mode names (src/cli/cache-mode.ts:
 * sourceCacheMode); the image is read, and repaired, through the page cache whatever the mode. Exit status as qemu-img's: 0 clean, 2 corruptions, 3 leaks only, 1 when the
 * check could not run or had internal errors (or the image could not be opened), 63 when the
 * format has no checks (raw).
 *
 * qemu-img check opens the image as for I/O before it checks anything, and exits 1 when that
 * fails. This is the one place that maps "qemu-img cannot open it" to our exit code; each case
 * fails with its typed error line and exit 1, and nothing is checked:
 *
 * | the image                                                            | qemu-img check | ours |
 * | -------------------------------------------------------------------- | -------------- | ---- |
 * | metadata readMetadata() refuses (bad header, extensions, tables)      | 1              | 1    |
 * | its backing file is missing, unreadable, or the chain loops / is deeper than 32 | 1    | 1    |
 * | its external data file is missing or unreadable                      | 1              | 1    |
 * | autoclear bit 1 (raw external data) without an external data file    | 1              | 1    |
 * | crypt_method 2 (LUKS) without a crypto header extension              | 1              | 1    |
 * | a consistent bitmap whose table breaks QEMU's rules                  | 1              | 1    |
 * | an L1 or refcount table past the end of the file (a truncated image) | opens, classifies | classified too (0, 2 or 3) |
 *
 * The middle rows are openLinkedFiles() (src/qcow2/open.ts, run through probeLinkedFiles()); the
 * last is readMetadata's `tablesPastEnd`, which only check asks for.
 */
import { usage } from '../errors.js';
import { checkAndRepair, checkHuman, checkJson, repairedHuman, type CheckReport, type RepairMode } from '../check/index.js';
import { probeLinkedFiles } from '../device/open.js';
import { keyOpenError } from './open-error.js';
import { probeFormat } from '../engine/probe.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { onePositional, outputFormat, parse } from './args.js';
import { sourceCacheMode } from './cache-mode.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';

export const EXIT_NO_CHECKS = 63;

export async function check(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      output: { type: 'string' },
      format: { type: 'string', short: 'f' },
      'force-share': { type: 'boolean', short: 'U' },
      repair: { type: 'string', short: 'r' },
      quiet: { type: 'boolean', short: 'q' },
      cache: { type: 'string', short: 'T' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'check',
  );
  const output = outputFormat(values.output, 'check');
  const secrets = new Secrets(values.object);
  const image = imageArg(onePositional(positionals, 'image', 'check'), values['image-opts'] === true, secrets);
  secrets.dispose();
  const filename = image.path;
  const repair = repairMode(values.repair);
  if (values.cache !== undefined) sourceCacheMode(values.cache);
  const quiet = values.quiet === true;
  const say = (text: string) => {
    if (!quiet) ctx.stdout(text);
  };
  const format = image.format ?? values.format ?? (await probeFormat(filename));
  if (format === 'raw') {
    ctx.stderr('qcow2 check: This image format does not support checks\n');
    return EXIT_NO_CHECKS;
  }
  if (format !== 'qcow2') throw usage(`check: unknown format '${format}' (qcow2 or raw)`);

  const file = await NodeFile.open(filename, { readOnly: repair === undefined });
  try {
    // What qemu-img check cannot open is not checked (the table above).
    try {
      await probeLinkedFiles(filename, file, await readMetadata(file, { tablesPastEnd: true }), keyOptions(image));
    } catch (err) {
      throw keyOpenError(image.text, err) ?? err;
    } finally {
      forgetSecrets(image);
    }
    // Messages go out as they are found, in batches: a badly broken image can have millions.
    const lines: string[] = [];
    let pending = 0;
    const drain = () => {
      if (lines.length) ctx.stderr(lines.join(''));
      lines.length = 0;
      pending = 0;
    };
    const onMessage = (m: string) => {
      lines.push(`${m}\n`);
      pending += m.length + 1;
      if (pending >= MESSAGE_BATCH_BYTES) drain();
    };
    let reports: { first: CheckReport; final: CheckReport };
    try {
      reports = await checkAndRepair(file, repair ? { repair, onMessage } : { onMessage });
    } finally {
      drain();
    }
    const { first, final } = reports;
    // A repair pass that failed reports nothing it repaired (qemu-img has no counts from it).
    const repaired = !first.failure && (first.leaksFixed !== 0 || first.corruptionsFixed !== 0);
    if (repaired && output === 'human') say(repairedHuman(first));
    if (final.failure) {
      ctx.stderr(`qcow2 check: Check failed: ${final.failure.describe()}\n`);
      return 1;
    }
    say(output === 'json' ? checkJson({ ...final, filename, format: 'qcow2' }) : checkHuman(final));
    // qemu-img ends a check that had internal errors with this line, whatever the output format.
    if (final.checkErrors) ctx.stderr('qcow2 check: Check failed\n');
    return exitCode(final);
  } finally {
    await file.close();
  }
}

/** How many bytes of check messages are written to stderr at once. */
const MESSAGE_BATCH_BYTES = 64 * 1024;

function repairMode(value: string | undefined): RepairMode | undefined {
  if (value === undefined) return undefined;
  if (value === 'leaks' || value === 'all') return value;
  throw usage(`check: Unknown option value for -r (expecting 'leaks' or 'all'): ${value}`);
}

export function exitCode(r: CheckReport): number {
  if (r.checkErrors) return 1;
  if (r.corruptions) return 2;
  if (r.leaks) return 3;
  return 0;
}
