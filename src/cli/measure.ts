/**
 * `qcow2 measure [--output=human|json] [-f FMT] [-l SNAPSHOT] [-O qcow2|raw] [-o OPTIONS] (--size N | IMAGE)`:
 * what `qemu-img measure` (QEMU 7.2) prints, with its checks in its order (img_measure, then
 * qcow2_measure or raw_measure). Its error messages are ours, as usage errors. `--object` gives
 * the secrets of `-o encrypt.format=luks,encrypt.key-secret=ID` (the LUKS area is added, as
 * qemu-img adds it) and of an encrypted source (`--image-opts`, src/cli/image-opts.ts).
 */
import { measureQcow2, measureRaw, qcow2MeasureTarget, type MeasureInfo } from '../create/measure.js';
import { BLOCK_DRIVERS, isValidOptionList, parseCreateOptions, RAW_CREATE_OPTION_NAMES, type CreateOptionSet } from '../create/options.js';
import type { SnapshotRef } from '../engine/types.js';
import { isQcow2Error, unsupported, usage } from '../errors.js';
import { measureSource } from '../map/measure-source.js';
import { openForMap, type OpenedMap } from '../map/open.js';
import { cvtnumFull } from '../units.js';
import { parse } from './args.js';
import type { CliContext } from './context.js';
import type { ImageKeys } from '../device/open.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { explainOpenError } from './open-error.js';
import { openAtSnapshot, snapshotRef } from './snapshot-ref.js';

export async function measure(args: string[], ctx: CliContext): Promise<number> {
  // getopt takes the next word as --size's argument even when it starts with a dash (--size -1).
  const words = args.flatMap((a, i) => (a === '--size' && i + 1 < args.length ? [] : args[i - 1] === '--size' && i > 0 ? [`--size=${a}`] : [a]));
  const { values, positionals } = parse(
    words,
    {
      output: { type: 'string' },
      format: { type: 'string', short: 'f' },
      'target-format': { type: 'string', short: 'O' },
      options: { type: 'string', short: 'o', multiple: true },
      size: { type: 'string' },
      snapshot: { type: 'string', short: 'l' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'measure',
  );
  const snapshot = values.snapshot === undefined ? undefined : snapshotRef(values.snapshot, 'measure', ctx);
  const lists = values.options ?? [];
  for (const list of lists) if (!isValidOptionList(list)) throw usage(`Invalid option list: ${list}`);
  const output = values.output ?? 'human';
  if (output !== 'human' && output !== 'json') throw usage('--output must be used with human or json as argument.');
  let size: bigint | undefined;
  if (values.size !== undefined) {
    const r = cvtnumFull('image size', values.size);
    if ('error' in r) throw usage(r.error);
    size = r.value;
  }
  if (positionals.length > 1) throw usage('At most one filename argument is allowed.');
  const filename = positionals[0];
  if (filename === undefined && (values.format !== undefined || snapshot !== undefined || values['image-opts'] === true)) throw usage('--image-opts, -f, and -l require a filename argument.');
  if (filename !== undefined && size !== undefined) throw usage('--size N cannot be used together with a filename.');
  if (filename === undefined && size === undefined) throw usage('Either --size N or one filename must be specified.');

  const secrets = new Secrets(values.object);
  let opened: OpenedMap | undefined;
  let source: string | undefined;
  try {
    if (filename !== undefined) {
      const image = imageArg(filename, values['image-opts'] === true, secrets);
      const format = image.format ?? values.format;
      if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
        throw unsupported(`measure: only qcow2 and raw source images can be read (-f ${format})`);
      }
      source = image.path;
      try {
        opened = await openSource(image.path, format, keyOptions(image), image.text, snapshot);
      } finally {
        forgetSecrets(image);
      }
    }
    const target = values['target-format'] ?? 'raw';
    if (target !== 'qcow2' && target !== 'raw') {
      if (BLOCK_DRIVERS.includes(target)) throw unsupported(`measure: only qcow2 and raw targets can be measured (-O ${target})`);
      throw usage(`Unknown file format '${target}'`);
    }
    let set: CreateOptionSet;
    try {
      set = parseCreateOptions(lists, target === 'raw' ? RAW_CREATE_OPTION_NAMES : undefined);
    } catch (err) {
      if (isQcow2Error(err)) throw usage(`Invalid options for file format '${target}': ${err.message}`);
      throw err;
    }
    if (size !== undefined) set.setNumber('size', size);
    let info: MeasureInfo;
    if (target === 'raw') {
      info = measureRaw(set, opened === undefined ? undefined : { size: BigInt(opened.top.size), dataBytes: 0n, bitmaps: undefined });
    } else {
      const t = qcow2MeasureTarget(set, (id) => secrets.copy(id));
      // qcow2_measure checks the size option before it looks at the source.
      measureQcow2(t, undefined);
      info = measureQcow2(t, opened && source !== undefined ? await measureSource(opened.top, source, t.clusterSize) : undefined);
    }
    ctx.stdout(output === 'json' ? jsonInfo(info) : humanInfo(info));
    return 0;
  } finally {
    secrets.dispose();
    await opened?.close();
  }
}

/**
 * Opens the source as img_open does, with its message for a missing file; with -l, as it was at
 * that snapshot (qemu-img's messages when it cannot be loaded).
 */
async function openSource(filename: string, format: 'qcow2' | 'raw' | undefined, keys: ImageKeys, operand: string, snapshot: SnapshotRef | undefined): Promise<OpenedMap> {
  return openAtSnapshot(filename, format, snapshot, (at) => openForMap(filename, format, keys, at), (err) => explainOpenError(filename, err, operand));
}

/** QEMU prints the numbers as unsigned in the text, as signed 64-bit integers in JSON (QNum). */
const u64 = (n: bigint) => BigInt.asUintN(64, n);
const s64 = (n: bigint) => BigInt.asIntN(64, n);

function humanInfo(info: MeasureInfo): string {
  const lines = [`required size: ${u64(info.required)}`, `fully allocated size: ${u64(info.fullyAllocated)}`];
  if (info.bitmaps !== undefined) lines.push(`bitmaps size: ${u64(info.bitmaps)}`);
  return `${lines.join('\n')}\n`;
}

/** QEMU's JSON of BlockMeasureInfo: its keys in QDict order (bitmaps first when present). */
function jsonInfo(info: MeasureInfo): string {
  const lines: string[] = [];
  if (info.bitmaps !== undefined) lines.push(`    "bitmaps": ${s64(info.bitmaps)}`);
  lines.push(`    "required": ${s64(info.required)}`, `    "fully-allocated": ${s64(info.fullyAllocated)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}
