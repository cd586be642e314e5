/**
 * How QEMU sees an image's persistent bitmaps: the list `qemu-img info` gives (name, flags,
 * granularity), and a bitmap's dirty ranges as `qemu-nbd -B NAME` exports them
 * (`qemu:dirty-bitmap:NAME`, socket-activated by `nbdinfo --map`). The judges of the crash
 * suite and of the campaign read bitmaps through here.
 */
import { runTool } from '../tools/run.js';
import { type QemuImage, qemuImageArgs } from './qemu-image.js';

export interface QemuBitmap {
  name: string;
  /** 'auto' (enabled), 'in-use' (inconsistent after a crash). */
  flags: string[];
  granularity: number;
}

/** A dirty range [start, end) of guest bytes. */
export type DirtyRange = [number, number];

export class QemuViewError extends Error {
  override readonly name = 'QemuViewError';
}

/** An image's path, or its path and a LUKS image's passphrase. */
function named(image: string | QemuImage): string[] {
  return qemuImageArgs(typeof image === 'string' ? { path: image } : image);
}

/** The bitmaps `qemu-img info` lists for `image` (relative to `cwd`). */
export async function qemuBitmaps(image: string | QemuImage, cwd?: string): Promise<QemuBitmap[]> {
  const info = await runTool(process.env['QEMU_IMG'] ?? 'qemu-img', ['info', '--output=json', ...named(image)], cwd);
  if (info.code !== 0) throw new QemuViewError(`qemu-img info exit ${info.code}: ${info.stderr.trim().slice(0, 500)}`);
  const parsed = JSON.parse(info.stdout) as { 'format-specific'?: { data?: { bitmaps?: QemuBitmap[] } } };
  return parsed['format-specific']?.data?.bitmaps ?? [];
}

/** The dirty ranges of bitmap `name` of `image` as QEMU exports them, merged and in order. */
export async function qemuDirtyRanges(image: string | QemuImage, name: string, cwd?: string): Promise<DirtyRange[]> {
  const args = ['--json', `--map=qemu:dirty-bitmap:${name}`, '--', '[', 'qemu-nbd', '-r', '-B', name, ...named(image), ']'];
  const map = await runTool('nbdinfo', args, cwd);
  if (map.code !== 0) throw new QemuViewError(`bitmap '${name}': nbdinfo --map with qemu-nbd -B exit ${map.code}: ${map.stderr.trim().slice(0, 500)}`);
  const extents = JSON.parse(map.stdout) as { offset: number; length: number; type: number }[];
  return mergeRanges(extents.filter((e) => e.type === 1).map((e): DirtyRange => [e.offset, e.offset + e.length]));
}

/** Ranges sorted, with touching and overlapping ones joined. */
export function mergeRanges(ranges: readonly DirtyRange[]): DirtyRange[] {
  const out: DirtyRange[] = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}
