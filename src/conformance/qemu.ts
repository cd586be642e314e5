/** Running QEMU's tools as the outside judge (node:child_process only: this ships in dist/). */
import { execFile } from 'node:child_process';

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function runTool(tool: string, args: string[], cwd?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { cwd, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${tool} could not be run: ${err.message}`));
        return;
      }
      resolve({ exitCode: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

export async function qemuImgJson(args: string[], cwd?: string): Promise<unknown> {
  const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
  const r = await runTool(qemuImg, args, cwd);
  if (r.exitCode !== 0) throw new Error(`qemu-img ${args[0]} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as unknown;
}
