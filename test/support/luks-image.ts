/**
 * qemu-img commands that make LUKS key material, with QEMU's calibration flake retried (the rule
 * lives in src/verification/qemu-image.ts); the result in execa's shape, as the tests read it.
 */
import { qemuImgCalibrating as run } from '../../src/verification/qemu-image.js';

/** As execa gives output: without its final newline. */
const stripFinalNewline = (text: string) => text.replace(/\r?\n$/, '');

export async function qemuImgCalibrating(args: string[], opts: { cwd?: string } = {}) {
  const r = await run(args, opts.cwd);
  return { exitCode: r.code, stdout: stripFinalNewline(r.stdout), stderr: stripFinalNewline(r.stderr) };
}
