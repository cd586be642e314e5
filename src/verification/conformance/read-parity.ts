/**
 * Our engine's reads of an image against QEMU's: on every range `qemu-img map` reports as data,
 * our bytes equal what `qemu-img convert -O raw` wrote.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CorpusImage } from '../corpus/build.js';
import type { BlockDevice } from '../../engine/types.js';
import { runTool } from '../../tools/run.js';

const CHUNK = 4 << 20;

/** Returns a problem description, or undefined when every data range agrees. */
export async function checkReads(image: CorpusImage, device: BlockDevice): Promise<string | undefined> {
  const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-reads-'));
  try {
    const raw = join(dir, 'qemu.raw');
    const convert = await runTool(qemuImg, ['convert', '-O', 'raw', ...image.openArgs, raw], image.dir);
    if (convert.code !== 0) return `qemu-img convert failed: ${convert.stderr.trim()}`;
    const map = await runTool(qemuImg, ['map', '--output=json', ...image.openArgs], image.dir);
    if (map.code !== 0) return `qemu-img map failed: ${map.stderr.trim()}`;
    const ranges = (JSON.parse(map.stdout) as { start: number; length: number; data: boolean }[]).filter((m) => m.data);
    const fh = await open(raw, 'r');
    try {
      for (const r of ranges) {
        for (let pos = r.start; pos < r.start + r.length; pos += CHUNK) {
          const n = Math.min(CHUNK, r.start + r.length - pos);
          const ours = await device.read(pos, n);
          const theirs = new Uint8Array(n);
          await fh.read(theirs, 0, n, pos);
          if (Buffer.compare(Buffer.from(ours.buffer, ours.byteOffset, n), Buffer.from(theirs.buffer, 0, n)) !== 0) {
            return `guest range 0x${pos.toString(16)}+${n} reads differently from qemu-img convert`;
          }
        }
      }
    } finally {
      await fh.close();
    }
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
