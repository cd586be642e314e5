/**
 * How QEMU's tools (qemu-img, qemu-io, qemu-nbd) are told to open the verification's qcow2 images:
 * a plain image as `-f qcow2 PATH`, a LUKS-encrypted one as a user unlocks it,
 * `--object secret,id=ID,data=PASS --image-opts driver=qcow2,file.filename=PATH,encrypt.key-secret=ID`.
 * Every judge that runs a QEMU tool on an image that may be encrypted names it through here.
 */
import { runTool, type ToolResult } from '../tools/run.js';

/** An image as the QEMU tools open it: its path and, when LUKS-encrypted, its passphrase. */
export interface QemuImage {
  path: string;
  passphrase?: string | undefined;
}

/**
 * The arguments naming `images` (in order) to a QEMU tool, after its other options: all of them
 * with `-f qcow2` when none is encrypted, else all as `--image-opts` (QEMU takes one form for every
 * image of a command), each encrypted one with a secret object of its own.
 */
export function qemuImageArgs(...images: QemuImage[]): string[] {
  if (images.every((i) => i.passphrase === undefined)) return ['-f', 'qcow2', ...images.map((i) => i.path)];
  const objects: string[] = [];
  const specs = images.map((img, k) => {
    const spec = `driver=qcow2,file.filename=${img.path}`;
    if (img.passphrase === undefined) return spec;
    objects.push('--object', `secret,id=sec${k},data=${img.passphrase}`);
    return `${spec},encrypt.key-secret=sec${k}`;
  });
  return [...objects, '--image-opts', ...specs];
}

/**
 * The `-o` options and `--object` that make `qemu-img create` (or convert) write a LUKS image with
 * `passphrase`; a low iter-time keeps PBKDF2 cheap.
 */
export function luksCreateArgs(passphrase: string): { object: string[]; options: string } {
  return {
    object: ['--object', `secret,id=sec0,data=${passphrase}`],
    options: 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10',
  };
}

/** What qemu-img prints when its PBKDF2 calibration measured no thread CPU time. */
export const CALIBRATION_FLAKE = 'Unable to get accurate CPU usage';

/**
 * How often a command that hit CALIBRATION_FLAKE is run in all. QEMU times 2^15 PBKDF2 iterations
 * with getrusage(RUSAGE_THREAD), which the kernel advances only at scheduler ticks; on a fast CPU
 * the first round can end between two ticks (a quarter of the runs on this host, five in a row on
 * one CI run). Each attempt takes milliseconds, so 50 cost nothing, and even if three runs in four
 * failed, 50 failures in a row would be improbable (0.75^50 < 1e-6).
 */
export const CALIBRATION_ATTEMPTS = 50;

/**
 * Runs qemu-img `args`. Commands that make LUKS key material calibrate PBKDF2 first, and that
 * calibration fails now and then (CALIBRATION_FLAKE): QEMU's flake, so such a command is run again,
 * CALIBRATION_ATTEMPTS times in all at most. Any other outcome is returned as it is.
 */
export async function qemuImgCalibrating(args: string[], cwd?: string): Promise<ToolResult> {
  const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
  for (let attempt = 1; ; attempt++) {
    const r = await runTool(qemuImg, args, cwd);
    if (attempt < CALIBRATION_ATTEMPTS && r.code !== 0 && r.stderr.includes(CALIBRATION_FLAKE)) continue;
    return r;
  }
}
