/**
 * Running `qcow2 convert` and `qemu-img convert` side by side on the same fixtures, and the views of
 * their outputs the convert parity tests compare (test/interop/convert-*-parity.test.ts).
 */
import { execa } from 'execa';
import { copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { qcow2 } from './cli.js';

export interface ConvertCase {
  /** IN, OUT: the source and the output (`OUT` also inside a word, for --target-image-opts). */
  args: string[];
  /** -n: OUT starts as a copy of this fixture. */
  target?: string;
  /** OUT's format, for the views (raw: compared with host offsets). */
  out: 'qcow2' | 'raw';
  /** The messages are compared as sets: qemu-img's coroutines report in an order of their timing (--salvage). */
  unorderedMessages?: true;
}

/**
 * stderr in a form both tools share: qemu-img's `qemu-img: ` and our `qcow2 convert: CODE: ` become
 * `error: `, both tools' warnings `warning: `; qemu-img's size message on two lines is one.
 */
export function messages(stderr: string, tool: 'qemu-img' | 'qcow2'): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  const out = lines.map((l) =>
    tool === 'qemu-img'
      ? l.replace(/^qemu-img: warning: /, 'warning: ').replace(/^qemu-img: /, 'error: ').replace(/'qemu-img bitmap/, "'qcow2 bitmap")
      : l.replace(/^qcow2 convert: warning: /, 'warning: ').replace(/^qcow2 convert: [a-z]+: /, 'error: '),
  );
  return out.join('\n').replace(/ for\nerror: kilobytes/, ' for kilobytes');
}

/**
 * Runs case `k` (numbered `i`) with both tools in `dir`: the same exit status, stdout and messages,
 * and an output left behind only where qemu-img leaves one. Returns the two outputs' names.
 */
export async function runBoth(dir: string, k: ConvertCase, i: number): Promise<{ theirs: string; ours: string; qr: { exitCode?: number | undefined; stderr: string } }> {
  const ext = k.out === 'raw' ? 'raw' : 'qcow2';
  const theirs = `t${i}.${ext}`;
  const ours = `o${i}.${ext}`;
  if (k.target) {
    await copyFile(join(dir, k.target), join(dir, theirs));
    await copyFile(join(dir, k.target), join(dir, ours));
  }
  const withOut = (out: string) => k.args.map((a) => a.replace(/\bOUT\b/, out));
  const qr = await execa('qemu-img', ['convert', ...withOut(theirs)], { cwd: dir, reject: false });
  const rr = await qcow2(['convert', ...withOut(ours)], { cwd: dir });
  const rename = (s: string) => s.split(theirs).join(ours);
  expect(rr.exitCode, `${rr.stderr}\nqemu-img: ${qr.stderr}`).toBe(qr.exitCode);
  expect(rr.stdout).toBe(rename(qr.stdout));
  const sorted = (text: string) => (k.unorderedMessages ? text.split('\n').sort().join('\n') : text);
  expect(sorted(messages(rr.stderr, 'qcow2'))).toBe(sorted(messages(rename(qr.stderr), 'qemu-img')));
  expect(existsSync(join(dir, ours))).toBe(existsSync(join(dir, theirs)));
  return { theirs, ours, qr };
}

/** qemu-img info's JSON of an output, its file name and size on disk left out. */
export async function outputInfo(dir: string, image: string, fmt: string): Promise<Record<string, unknown>> {
  const out = JSON.parse((await execa('qemu-img', ['info', '-f', fmt, '--output=json', image], { cwd: dir })).stdout) as Record<string, unknown>;
  delete out['filename'];
  delete out['actual-size'];
  return out;
}

export async function outputMap(dir: string, image: string, fmt: string): Promise<string> {
  return (await execa('qemu-img', ['map', '-f', fmt, '--output=json', image], { cwd: dir })).stdout;
}

/**
 * A map in which data is never `zero`: qemu-img map says `zero` of the part of a data cluster that
 * is a hole, or an unwritten extent without dirty pages, in the host file — the file system's view
 * at that moment (whether the page cache was written back yet), not the image's; the entries this
 * splits are merged again.
 */
export function withoutHostZeroes(json: string, offsets: boolean): unknown {
  const merged: Record<string, unknown>[] = [];
  for (const e of JSON.parse(json) as Record<string, unknown>[]) {
    const entry: Record<string, unknown> = { ...e, ...(e['data'] ? { zero: false } : {}) };
    if (!offsets) delete entry['offset'];
    const last = merged[merged.length - 1];
    const same = last && ['depth', 'present', 'zero', 'data'].every((k) => last[k] === entry[k]);
    const contiguous = last && (last['offset'] === undefined) === (entry['offset'] === undefined) && (entry['offset'] === undefined || (last['offset'] as number) + (last['length'] as number) === entry['offset']);
    if (last && same && contiguous && (last['start'] as number) + (last['length'] as number) === entry['start']) last['length'] = (last['length'] as number) + (entry['length'] as number);
    else merged.push(entry);
  }
  return merged;
}
