/**
 * How QEMU's tools see an image, in forms tests compare: `qemu-img map --output=json` without host
 * offsets, the bitmaps `qemu-img info` lists, and a bitmap's dirty ranges (`qemu-nbd -B NAME`,
 * socket-activated by `nbdinfo --map`).
 */
import { execa } from 'execa';
import { type QemuBitmap, qemuBitmaps } from '../../src/verification/qemu-bitmaps.js';
import { toolEnv } from './tools.js';

/**
 * A map without host offsets, adjacent entries that then say the same merged: where the
 * allocator puts clusters (and so which guest ranges are contiguous on the host) is ours to choose.
 */
export function mapWithoutOffsets(json: string): unknown {
  const merged: Record<string, unknown>[] = [];
  for (const { offset: _offset, ...rest } of JSON.parse(json) as Record<string, unknown>[]) {
    const last = merged[merged.length - 1];
    const same = last && ['depth', 'present', 'zero', 'data'].every((k) => last[k] === rest[k]);
    if (last && same && (last['start'] as number) + (last['length'] as number) === rest['start']) last['length'] = (last['length'] as number) + (rest['length'] as number);
    else merged.push(rest);
  }
  return merged;
}

/** The persistent bitmaps `qemu-img info` lists (name, flags, granularity). */
export function bitmapsOf(image: string, cwd?: string): Promise<QemuBitmap[]> {
  return qemuBitmaps(image, cwd);
}

/** QEMU's view of a bitmap's bits: `nbdinfo --json --map` of `qemu-nbd -r -B NAME`. */
export async function dirtyMap(image: string, name: string, cwd?: string): Promise<string> {
  const args = ['--json', `--map=qemu:dirty-bitmap:${name}`, '--', '[', 'qemu-nbd', '-r', '-f', 'qcow2', '-B', name, image, ']'];
  return (await execa('nbdinfo', args, { cwd, env: toolEnv() })).stdout;
}
