/**
 * The bitmap rule for one crash state, judged by QEMU: every bitmap the image was made with is
 * still there (`qemu-img info`); one marked in_use is inconsistent and says so (QEMU and we then
 * refuse its bits); an enabled one stored clean holds every granule a request begun before the
 * crash touched as dirty (`qemu-nbd -B NAME`, socket-activated by `nbdinfo --map`). So a bitmap
 * never silently loses a bit.
 */
import { runTool } from '../../tools/run.js';
import type { Expectation } from './types.js';

interface Extent {
  offset: number;
  length: number;
  type: number;
}

/** The problems with the bitmaps of `image.qcow2` in `dir` (none: the rule holds). */
export async function bitmapProblems(dir: string, expected: Expectation): Promise<string[]> {
  if (!expected.bitmaps?.length) return [];
  const problems: string[] = [];
  const info = await runTool(process.env['QEMU_IMG'] ?? 'qemu-img', ['info', '-f', 'qcow2', '--output=json', 'image.qcow2'], dir);
  if (info.code !== 0) return [`qemu-img info exit ${info.code}: ${info.stderr.trim().slice(0, 500)}`];
  const listed = ((JSON.parse(info.stdout) as { 'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[] }[] } } })['format-specific']?.data?.bitmaps ?? []);
  for (const b of expected.bitmaps) {
    const found = listed.find((x) => x.name === b.name);
    if (!found) {
      problems.push(`bitmap '${b.name}' is gone`);
      continue;
    }
    if (found.flags.includes('in-use') || b.disabled) continue;
    const map = await runTool('nbdinfo', ['--json', `--map=qemu:dirty-bitmap:${b.name}`, '--', '[', 'qemu-nbd', '-r', '-f', 'qcow2', '-B', b.name, 'image.qcow2', ']'], dir);
    if (map.code !== 0) {
      problems.push(`bitmap '${b.name}': nbdinfo --map with qemu-nbd -B exit ${map.code}: ${map.stderr.trim().slice(0, 500)}`);
      continue;
    }
    const dirty = (JSON.parse(map.stdout) as Extent[]).filter((e) => e.type === 1);
    for (const [from, to] of expected.touched ?? []) {
      const clean = firstUncovered(dirty, from, to);
      if (clean !== undefined) {
        problems.push(`bitmap '${b.name}' is stored clean (not in_use) but guest byte ${clean}, written by a request begun before the crash, is not dirty in it`);
        break;
      }
    }
  }
  return problems;
}

/** The first byte of [from, to) no extent covers, or undefined. */
function firstUncovered(extents: readonly Extent[], from: number, to: number): number | undefined {
  let at = from;
  for (const e of [...extents].sort((a, b) => a.offset - b.offset)) {
    if (e.offset > at) break;
    at = Math.max(at, e.offset + e.length);
    if (at >= to) return undefined;
  }
  return at < to ? at : undefined;
}
