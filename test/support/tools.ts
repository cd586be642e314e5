/**
 * Access to the external tools tests drive: QEMU's (qemu-img, qemu-io, qemu-nbd) and the NBD
 * clients (libnbd's nbdinfo, nbdcopy, nbdsh; fio with its nbd engine). Under CI=true a missing tool
 * fails the test; elsewhere too: nothing here skips. `scripts/setup.sh` installs all of them.
 */
import { execa } from 'execa';

/** Each tool, the Debian package that brings it, and how to ask it for its version. */
const TOOLS = {
  'qemu-img': { pkg: 'qemu-utils', probe: ['--version'] },
  'qemu-io': { pkg: 'qemu-utils', probe: ['--version'] },
  'qemu-nbd': { pkg: 'qemu-utils', probe: ['--version'] },
  nbdinfo: { pkg: 'libnbd-bin', probe: ['--version'] },
  nbdcopy: { pkg: 'libnbd-bin', probe: ['--version'] },
  // nbdsh is a Python program: it needs the python3-libnbd module, which Debian installs for
  // /usr/bin/python3 only (a pyenv or venv python3 earlier on PATH would not find it).
  nbdsh: { pkg: 'libnbd-bin python3-libnbd', probe: ['-c', 'import nbd'] },
  fio: { pkg: 'fio', probe: ['--enghelp=nbd'] },
  // Test certificates for the NBD TLS tests (in Debian's base system).
  openssl: { pkg: 'openssl', probe: ['version'] },
} as const;

export type ToolName = keyof typeof TOOLS;

/**
 * The environment to run a tool in: /usr/bin first on PATH, so that nbdsh (a shell wrapper that
 * runs `python3 -mnbd`) finds the system Python that has Debian's `nbd` module.
 */
export function toolEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` };
}

export async function requireTool(name: ToolName): Promise<void> {
  const { pkg, probe } = TOOLS[name];
  try {
    await execa(name, [...probe], { env: toolEnv(), timeout: 30_000 });
  } catch {
    throw new Error(`${name} is required for this test: install ${pkg} (apt-get install -y ${pkg}; scripts/setup.sh does)`);
  }
}

export async function qemuImg(args: string[], opts: { reject?: boolean } = {}) {
  return execa('qemu-img', args, { reject: opts.reject ?? true });
}
