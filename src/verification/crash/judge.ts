/**
 * The verdict on one crash state: the image opens with our engine (which repairs it when the dirty
 * bit says refcounts may be stale), `qemu-img check` finds no corruption (leaks are allowed; after
 * a repair nothing at all) and our check (src/check/) finds exactly what qemu-img found, every
 * byte a returned flush covered reads back, and no bitmap silently lost a bit (bitmap-judge.ts).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkImage } from '../../check/index.js';
import { NodeFile } from '../../io/node-file.js';
import { openOptimized } from '../../optimized/open.js';
import { runTool } from '../../tools/run.js';
import { bitmapProblems } from './bitmap-judge.js';
import { describeError } from './describe.js';
import type { Expectation } from './types.js';

export interface QemuCheck {
  exit: number | null;
  corruptions: number;
  leaks: number;
  checkErrors: number;
  text: string;
}

/** `qemu-img check` on `image.qcow2` in `dir` (run there: QEMU 7.2 finds a data file from there). */
export async function qemuCheck(dir: string): Promise<QemuCheck> {
  const r = await runTool(process.env['QEMU_IMG'] ?? 'qemu-img', ['check', '-f', 'qcow2', '--output=json', 'image.qcow2'], dir);
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    // No JSON: the image could not even be opened; the exit code says so.
  }
  const n = (k: string) => (typeof parsed[k] === 'number' ? (parsed[k] as number) : 0);
  return { exit: r.code, corruptions: n('corruptions'), leaks: n('leaks'), checkErrors: n('check-errors'), text: (r.stdout + r.stderr).trim() };
}

/** Our checker on the same file: it must find what qemu-img found (leaks, corruptions, errors). */
async function ourCheck(path: string, theirs: QemuCheck, problems: string[]): Promise<void> {
  const file = await NodeFile.open(path, { readOnly: true });
  try {
    const r = await checkImage(file);
    if (r.corruptions !== theirs.corruptions || r.leaks !== theirs.leaks || r.checkErrors !== theirs.checkErrors) {
      problems.push(
        `our check found ${r.corruptions} corruptions, ${r.leaks} leaks, ${r.checkErrors} errors; qemu-img ${theirs.corruptions}, ${theirs.leaks}, ${theirs.checkErrors}: ${r.messages.slice(0, 5).join('; ')}`,
      );
    }
  } catch (err) {
    problems.push(`our check: ${describeError(err)}`);
  } finally {
    await file.close();
  }
}

/** The files of one crash state: the image, and its external data file when it has one. */
export interface StateFiles {
  image: Uint8Array;
  data?: { name: string; bytes: Uint8Array };
}

/** The problems with one crash state (none: it passes). Leaves no file behind. */
export async function judge(files: StateFiles, expected: Expectation, dir: string, name: string): Promise<{ problems: string[]; leaks: number; dirty: boolean }> {
  const own = join(dir, name);
  await mkdir(own);
  const path = join(own, 'image.qcow2');
  const bytes = files.image;
  await writeFile(path, bytes);
  if (files.data) await writeFile(join(own, files.data.name), files.data.bytes);
  const problems: string[] = [];
  const dirty = bytes.byteLength > 79 && (bytes[79]! & 1) === 1 && bytes[7] === 3;
  let leaks = 0;
  try {
    // On the state as the crash left it, before our engine opens (and may repair) it.
    problems.push(...(await bitmapProblems(own, expected)));
    if (!dirty) {
      const c = await qemuCheck(own);
      leaks = c.leaks;
      if (c.exit !== 0 && c.exit !== 3) problems.push(`qemu-img check exit ${c.exit}: ${c.text.slice(0, 2000)}`);
      await ourCheck(path, c, problems);
    }
    try {
      const dev = await openOptimized(path, { noFlush: true, compressionThreads: 0 });
      try {
        const got = await dev.read(0, Math.min(dev.virtualSize, expected.bytes.byteLength));
        const bad = firstDifference(got, expected);
        if (bad !== -1) problems.push(`guest byte ${bad} (flushed before the crash) reads ${got[bad]}, expected ${expected.bytes[bad]}`);
        const sizes = expected.sizes ?? [expected.bytes.byteLength];
        if (!sizes.includes(dev.virtualSize)) problems.push(`virtual size ${dev.virtualSize}, expected one of ${sizes.join(', ')}`);
      } finally {
        await dev.close();
      }
    } catch (err) {
      problems.push(`our engine: ${describeError(err)}`);
    }
    if (dirty && problems.length === 0) {
      const c = await qemuCheck(own);
      if (c.exit !== 0) problems.push(`after repair, qemu-img check exit ${c.exit}: ${c.text.slice(0, 2000)}`);
      await ourCheck(path, c, problems);
    }
  } finally {
    await rm(own, { recursive: true, force: true });
  }
  return { problems, leaks, dirty };
}

/** First guest byte outside the unsettled ranges that differs, or -1. */
export function firstDifference(got: Uint8Array, e: Expectation): number {
  const n = Math.min(got.byteLength, e.bytes.byteLength);
  const unsettled = [...e.unsettled].sort((a, b) => a[0] - b[0]);
  let u = 0;
  for (let i = 0; i < n; i++) {
    while (u < unsettled.length && unsettled[u]![1] <= i) u++;
    if (u < unsettled.length && unsettled[u]![0] <= i) {
      i = unsettled[u]![1] - 1;
      continue;
    }
    if (got[i] !== e.bytes[i]) return i;
  }
  return -1;
}
