/**
 * The differential sample: a case's image written to a temporary file and given to QEMU
 * (`qemu-img info`, `qemu-img convert -O raw` for the guest bytes, `qemu-img check`), always
 * without a backing file (`backing: null`), as our in-process targets open it. Disagreements are
 * findings: QEMU refuses to open and we open; QEMU reads and we read other bytes (or fail with
 * anything but a typed corrupt/unsupported/truncated error); the check verdicts (clean, leaks,
 * corrupt, failed) differ. The image is also opened by path with names followed, as `qcow2 info`
 * users open it, counting the process's file descriptors before and after.
 */
import { readdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkImage } from '../../check/index.js';
import { openImage } from '../../device/open.js';
import { isQcow2Error } from '../../errors.js';
import { readMetadata } from '../../image/metadata.js';
import { MemoryFile } from '../../io/memory-file.js';
import { refuseWhatQemuOpensNot } from '../../qcow2/open.js';
import { runTool, type ToolResult } from '../../tools/run.js';
import type { QemuTools } from '../corpus/build.js';
import { finding, type Finding } from './oracle.js';
import { CaseEnv } from './targets.js';

/** Guest sizes up to this are compared byte for byte. */
const COMPARE_LIMIT = 64 * 1024 * 1024;

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/** QEMU gets this long per command (a hostile image can keep it busy for minutes); then it is killed. */
const QEMU_SECONDS = 15;

/** qemu-img under coreutils' timeout; null when it had to be killed. */
async function qemuImg(tools: QemuTools, args: string[], cwd: string): Promise<ToolResult | null> {
  const r = await runTool('timeout', ['-s', 'KILL', String(QEMU_SECONDS), tools.qemuImg, ...args], cwd);
  return r.code === 137 || r.signal !== null ? null : r;
}

function qemuSpec(path: string): string {
  return `json:${JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: path } })}`;
}

const clean = (text: string, path: string) => text.split(path).join('IMAGE').replace(/^qemu-img: /gm, '').trim().split('\n')[0] ?? '';

/** qemu-img check's exit statuses, as words (a finding's signature drops numbers). */
const VERDICT = ['clean', 'failed', 'corrupt', 'leaks'] as const;

/** Our verdict as qemu-img check's exit status: 0 clean, 1 failed, 2 corrupt, 3 leaks. */
async function ourCheck(bytes: Uint8Array): Promise<number> {
  try {
    const file = new MemoryFile(bytes, true);
    // What qemu-img check cannot open, `qcow2 check` does not check (src/cli/check.ts): exit 1.
    const meta = await readMetadata(file, { tablesPastEnd: true });
    await refuseWhatQemuOpensNot(file, meta);
    // QEMU is given no secret here, and an encrypted image does not open without one.
    if (meta.header.cryptMethod !== 0) return 1;
    const r = await checkImage(file, { quiet: true });
    if (r.failure || r.checkErrors) return 1;
    return r.corruptions ? 2 : r.leaks ? 3 : 0;
  } catch {
    return 1;
  }
}

export async function differential(bytes: Uint8Array, dir: string, placeholder: string, tools: QemuTools): Promise<Finding[]> {
  const findings: Finding[] = [];
  // An image with an external data file: QEMU would open the name it holds; we do not follow names in process.
  if (bytes.byteLength >= 80 && bytes[7] === 3 && ((bytes[79] ?? 0) & 4) !== 0) return findings;
  const path = join(dir, 'fuzz.qcow2');
  await writeFile(path, bytes);
  try {
    const info = await qemuImg(tools, ['info', '--output=json', qemuSpec(path)], dir);
    if (info === null) return findings;
    let ours: Error | undefined;
    let encrypted = false;
    const env = new CaseEnv(bytes, placeholder);
    let guest: Uint8Array | undefined;
    try {
      const meta = await readMetadata(new MemoryFile(bytes, true));
      encrypted = meta.header.cryptMethod !== 0;
      const device = await env.engine(true);
      try {
        if (device.virtualSize <= COMPARE_LIMIT) {
          try {
            guest = await device.read(0, device.virtualSize);
          } catch (err) {
            if (!isQcow2Error(err) || !['corrupt', 'unsupported', 'truncated'].includes(err.code)) {
              findings.push(finding('qemu', 'read-differs', `QEMU opens; our read fails with ${isQcow2Error(err) ? err.code : (err as Error).name}: ${(err as Error).message}`));
            }
            guest = undefined;
          }
        }
      } finally {
        await device.close();
      }
    } catch (err) {
      ours = err as Error;
    }
    if (info.code !== 0 && ours === undefined) {
      findings.push(finding('qemu', 'qemu-refuses-we-open', `qemu-img info: ${clean(info.stderr, path)}`));
    }
    if (info.code === 0 && ours === undefined && guest !== undefined && !encrypted) {
      const raw = join(dir, 'guest.raw');
      const conv = await qemuImg(tools, ['convert', '-O', 'raw', qemuSpec(path), raw], dir);
      if (conv === null) {
        // QEMU took too long: no verdict.
      } else if (conv.code !== 0) {
        findings.push(finding('qemu', 'read-differs', `qemu-img convert fails (${clean(conv.stderr, path)}); we read the whole disk`));
      } else {
        const theirs = new Uint8Array(await readFile(raw));
        const n = Math.min(theirs.byteLength, guest.byteLength);
        let at = 0;
        while (at < n && theirs[at] === guest[at]) at++;
        if (theirs.byteLength !== guest.byteLength) {
          findings.push(finding('qemu', 'read-differs', `the guest disk has ${theirs.byteLength} bytes for QEMU, ${guest.byteLength} for us`));
        } else if (at < n) {
          findings.push(finding('qemu', 'read-differs', `guest byte at 0x${at.toString(16)}: QEMU 0x${(theirs[at] ?? 0).toString(16)}, ours 0x${(guest[at] ?? 0).toString(16)}`));
        }
      }
      await rm(raw, { force: true });
    }
    // Where QEMU cannot open the image, the finding above says so; the check verdicts are compared where it can.
    const check = info.code === 0 ? await qemuImg(tools, ['check', '--output=json', qemuSpec(path)], dir) : null;
    const mine = await ourCheck(bytes);
    // qemu-img check running out of memory is no verdict on the image (a hostile offset near 2^64
    // wraps in QEMU's signed arithmetic and sizes its in-memory refcount table from it).
    const qemuOutOfMemory = check !== null && /Cannot allocate memory/.test(check.stderr);
    if (check !== null && check.code !== null && !qemuOutOfMemory && check.code !== mine && check.code <= 3 && check.code >= 0) {
      findings.push(finding('qemu', 'check-verdict', `qemu-img check says ${VERDICT[check.code]}, ours ${VERDICT[mine]}`));
    }
    // Opened by path with names followed (read-only), as a user opens it: no descriptor may stay open.
    const before = openFds();
    try {
      const device = await openImage(path, { readOnly: true, format: 'qcow2' });
      await device.close();
    } catch {
      // Refusing is fine; leaking is not.
    }
    const after = openFds();
    if (before >= 0 && after > before) findings.push(finding('qemu', 'handle-leak', `opening by path left ${after - before} file descriptor(s) open`));
  } finally {
    await rm(path, { force: true });
  }
  return findings;
}
