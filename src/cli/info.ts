/** `qcow2 info [--output=json] IMAGE`: what `qemu-img info` says about a qcow2 image. */
import { imageInfo, type Json } from '../image/info.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { onePositional, outputFormat, parse } from './args.js';
import type { CliContext } from './context.js';
import { sizeToString } from './format-human.js';
import { snapshotLine as formatSnapshotLine } from './snapshot-table.js';

export async function info(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    { output: { type: 'string' }, format: { type: 'string', short: 'f' } },
    'info',
  );
  const format = outputFormat(values.output, 'info');
  const filename = onePositional(positionals, 'image', 'info');
  const file = await NodeFile.open(filename, { readOnly: true });
  try {
    const meta = await readMetadata(file);
    const data = imageInfo(meta, filename, await file.allocatedBytes());
    ctx.stdout(format === 'json' ? `${JSON.stringify(data, null, 4)}\n` : humanInfo(data));
    return 0;
  } finally {
    await file.close();
  }
}

type Obj = { [key: string]: Json };

function humanInfo(info: Obj): string {
  const lines = [
    `image: ${info['filename']}`,
    'file format: qcow2',
    `virtual size: ${sizeToString(info['virtual-size'] as number)} (${info['virtual-size']} bytes)`,
    `disk size: ${sizeToString(info['actual-size'] as number)}`,
    `cluster_size: ${info['cluster-size']}`,
  ];
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
