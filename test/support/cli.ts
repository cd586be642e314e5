/** Runs the built `qcow2` command as a user would (the global setup builds dist/ first). */
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const QCOW2_BIN = fileURLToPath(new URL('../../bin/qcow2', import.meta.url));

export async function qcow2(args: string[], opts: { cwd?: string } = {}) {
  return execa(process.execPath, [QCOW2_BIN, ...args], { reject: false, cwd: opts.cwd ?? REPO, timeout: 120_000 });
}
