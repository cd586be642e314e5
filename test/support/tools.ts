/**
 * Access to QEMU's tools for tests. Under CI=true a missing tool fails the test; elsewhere too:
 * nothing here skips.
 */
import { execa } from 'execa';

export async function requireTool(name: 'qemu-img' | 'qemu-io'): Promise<void> {
  try {
    await execa(name, ['--version']);
  } catch {
    throw new Error(`${name} is required for this test: install qemu-utils (apt-get install -y qemu-utils)`);
  }
}

export async function qemuImg(args: string[], opts: { reject?: boolean } = {}) {
  return execa('qemu-img', args, { reject: opts.reject ?? true });
}
