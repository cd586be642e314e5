/**
 * `qcow2 info [-f FMT] [--output=json] [--backing-chain] IMAGE`: what `qemu-img info` says about a
 * qcow2 or raw image, or about every image of its backing chain.
 */
import { unsupported, usage } from '../errors.js';
import { imageInfo, type Json, rawImageInfo } from '../image/info.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { onePositional, outputFormat, parse } from './args.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, Secrets } from './image-opts.js';
import { sizeToString } from './format-human.js';
import { snapshotLine as formatSnapshotLine } from './snapshot-table.js';

export async function info(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    { output: { type: 'string' }, format: { type: 'string', short: 'f' }, 'backing-chain': { type: 'boolean' }, 'force-share': { type: 'boolean', short: 'U' }, ...IMAGE_OPTS_OPTIONS },
    'info',
  );
  const format = outputFormat(values.output, 'info');
  // info reads no guest data: a secret is parsed (and checked to exist) but not used.
  const secrets = new Secrets(values.object);
  const image = imageArg(onePositional(positionals, 'image', 'info'), values['image-opts'] === true, secrets);
  secrets.dispose();
  forgetSecrets(image);
  // As qemu-img info, which opens no backing file: their options are not taken.
  if (image.backingKeys.length > 0) throw usage(`Could not open '${image.text}': Block format 'qcow2' does not support the option 'backing.encrypt.key-secret'`);
  const filename = image.path;
  if (image.format !== undefined) values.format = image.format;
  if (values.format !== undefined && values.format !== 'qcow2' && values.format !== 'raw') {
    throw unsupported(`info: only qcow2 and raw images can be read (-f ${values.format})`);
  }
  if (!values['backing-chain']) {
    const data = await infoOf(filename, values.format);
    ctx.stdout(format === 'json' ? `${JSON.stringify(data, null, 4)}\n` : humanInfo(data));
    return 0;
  }
  // collect_image_info_list: each image alone, then its backing file by the name QEMU shows
  // (full-backing-filename) in the format the image records (else probed); nothing is printed
  // when a link fails.
  const chain: Obj[] = [];
  const seen = new Set<string>();
  let name: string | undefined = filename;
  let fmt: string | undefined = values.format;
  while (name !== undefined) {
    if (seen.has(name)) throw usage(`Backing file '${name}' creates an infinite loop.`);
    seen.add(name);
    if (fmt !== undefined && fmt !== 'qcow2' && fmt !== 'raw') throw unsupported(`info: the backing file '${name}' is in format '${fmt}', which cannot be read here`);
    const data = await infoOf(name, fmt);
    chain.push(data);
    const next = data['full-backing-filename'];
    name = typeof next === 'string' ? next : undefined;
    const nextFormat = data['backing-filename-format'];
    fmt = typeof nextFormat === 'string' ? nextFormat : undefined;
  }
  ctx.stdout(format === 'json' ? `${JSON.stringify(chain, null, 4)}\n` : chain.map(humanInfo).join('\n'));
  return 0;
}

/** One image's info, opened alone (no backing file), qcow2 or raw (probed unless given). */
async function infoOf(filename: string, format: 'qcow2' | 'raw' | undefined): Promise<Obj> {
  let file: NodeFile;
  try {
    file = await NodeFile.open(filename, { readOnly: true });
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw usage(`Could not open '${filename}': Could not open '${filename}': No such file or directory`);
    throw err;
  }
  try {
    const magic = await file.read(0, 4);
    const isQcow2 = magic.byteLength === 4 && magic[0] === 0x51 && magic[1] === 0x46 && magic[2] === 0x49 && magic[3] === 0xfb;
    if (format === 'qcow2' && !isQcow2) throw usage(`Could not open '${filename}': Image is not in qcow2 format`);
    if (format === 'raw' || !isQcow2) return rawImageInfo(filename, await file.size(), await file.allocatedBytes());
    return imageInfo(await readMetadata(file), filename, await file.allocatedBytes());
  } finally {
    await file.close();
  }
}

type Obj = { [key: string]: Json };

function humanInfo(info: Obj): string {
  const lines = [
    `image: ${info['filename']}`,
    `file format: ${info['format']}`,
    `virtual size: ${sizeToString(info['virtual-size'] as number)} (${info['virtual-size']} bytes)`,
    `disk size: ${sizeToString(info['actual-size'] as number)}`,
  ];
  if (info['format'] === 'raw') return `${lines.join('\n')}\n`;
  lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) {
    const full = info['full-backing-filename'];
    const actual = full !== info['backing-filename'] ? ` (actual path: ${full})` : '';
    lines.push(`backing file: ${info['backing-filename']}${actual}`);
  }
  if (info['backing-filename-format'] !== undefined) lines.push(`backing file format: ${info['backing-filename-format']}`);
  if (info['encrypted'] === true) lines.push('encrypted: yes');
  const snapshots = info['snapshots'] as Obj[] | undefined;
  if (snapshots) {
    lines.push('Snapshot list:');
    lines.push('ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT');
    for (const s of snapshots) lines.push(snapshotLine(s));
  }
  lines.push('Format specific information:');
  const data = (info['format-specific'] as Obj)['data'] as Obj;
  lines.push(...nested(data, 1));
  return `${lines.join('\n')}\n`;
}

function snapshotLine(s: Obj): string {
  return formatSnapshotLine({
    id: String(s['id']),
    name: String(s['name']),
    vmStateSize: s['vm-state-size'] as number,
    dateSec: s['date-sec'] as number,
    vmClockNsec: BigInt(s['vm-clock-sec'] as number) * 1_000_000_000n + BigInt(s['vm-clock-nsec'] as number),
    icount: s['icount'] === undefined ? -1n : BigInt(s['icount'] as number),
  });
}

function nested(value: Obj | Json[], depth: number): string[] {
  const indent = '    '.repeat(depth);
  const lines: string[] = [];
  const entries: [string, Json][] = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value);
  for (const [key, v] of entries) {
    const label = key.replace(/-/g, ' ');
    if (v !== null && typeof v === 'object') {
      lines.push(`${indent}${label}:`);
      lines.push(...nested(v, depth + 1));
    } else {
      lines.push(`${indent}${label}: ${String(v)}`);
    }
  }
  return lines;
}
