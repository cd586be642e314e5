/**
 * qemu-img commands that make LUKS key material (create, measure -o encrypt.format=luks) calibrate
 * PBKDF2 first, and with the short iter-times tests use that calibration fails now and then
 * ("Unable to get accurate CPU usage"): QEMU's flake, so such a command is run again (at most 5
 * times). Any other outcome is returned as it is.
 */
import { execa } from 'execa';

export async function qemuImgCalibrating(args: string[], opts: { cwd?: string } = {}) {
  for (let attempt = 1; ; attempt++) {
    const r = await execa('qemu-img', args, { reject: false, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    if (attempt < 5 && r.exitCode !== 0 && r.stderr.includes('Unable to get accurate CPU usage')) continue;
    return r;
  }
}
