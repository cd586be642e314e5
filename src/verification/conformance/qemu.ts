/** QEMU's tools as the outside judge. */
import { runTool } from '../../tools/run.js';

export async function qemuImgJson(args: string[], cwd?: string): Promise<unknown> {
  const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
  const r = await runTool(qemuImg, args, cwd);
  if (r.code !== 0) throw new Error(`qemu-img ${args[0]} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as unknown;
}
