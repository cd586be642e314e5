/** `qcow2 info [--output=json] IMAGE`: what `qemu-img info` says about a qcow2 image. */
import { imageInfo, type Json } from '../image/info.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { onePositional, outputFormat, parse } from './args.js';
import type { CliContext } from './context.js';
import { pad, sizeToString } from './format-human.js';

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
  const date = new Date((s['date-sec'] as number) * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  const dateText = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  const clockSec = s['vm-clock-sec'] as number;
  const ms = Math.floor((s['vm-clock-nsec'] as number) / 1e6);
  const clock = `${two(Math.floor(clockSec / 3600))}:${two(Math.floor(clockSec / 60) % 60)}:${two(clockSec % 60)}.${String(ms).padStart(3, '0')}`;
  const icount = s['icount'] === undefined ? '' : String(s['icount']);
  return `${pad(String(s['id']), 9)} ${pad(String(s['name']), 17)} ${pad(sizeToString(s['vm-state-size'] as number), 7, true)} ${dateText} ${clock} ${pad(icount, 10, true)}`;
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
