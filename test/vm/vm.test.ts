/**
 * The VM harness itself (test/support/vm.ts): one boot checks what the ublk tests rely on inside
 * the guest, a second one that crashes the guest checks the failure path. Without QEMU or the
 * cache (`bash test/vm/setup.sh`) these tests are skipped with the reason, except under CI=true,
 * where they fail.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInVm, vmAvailable, VmError, vmKernelVersion, type VmResult } from '../support/vm.js';

const available = vmAvailable();
const reason = available.ok ? '' : available.reason;

if (!available.ok && process.env.CI === 'true') {
  describe('VM harness', () => {
    it('is available under CI', () => {
      throw new Error(`the VM tests cannot run: ${reason}`);
    });
  });
}

describe.skipIf(!available.ok)(`VM harness${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let shared: string;
  let run: VmResult;

  // Each check prints one "check NAME: VALUE" line; the command then exits with 77 on purpose.
  const script = [
    'echo "check uname: $(uname -r)"',
    'modprobe ublk_drv && test -c /dev/ublk-control && echo "check ublk: ok"',
    'modprobe nbd && test -b /dev/nbd0 && echo "check nbd: ok"',
    'modprobe loop && echo "check loop: ok"',
    'node -e \'console.log("check node: " + (1 + 1) + " " + process.stdout.isTTY)\'',
    'echo "check cwd: $PWD"',
    'echo "check env: $QCOW2_VM_TEST"',
    'echo "written in the guest" > "$SHARED/from-guest"',
    'touch /etc/qcow2-vm-test && echo "check overlay: ok"',
    "seq -f 'line %g' 1 100000", // ~1.2 MB of output
    'exit 77',
  ].join('\n');

  beforeAll(async () => {
    shared = mkdtempSync(join(tmpdir(), 'qcow2-vm-test-'));
    run = await runInVm(script, { cwd: shared, writable: [shared], env: { SHARED: shared, QCOW2_VM_TEST: 'a b\'c' } });
    console.log(`VM boot ${run.bootMs} ms, whole run ${run.totalMs} ms (attempts: ${run.attempts})`);
  });
  afterAll(() => {
    if (shared) rmSync(shared, { recursive: true, force: true });
  });

  const check = (name: string) => new RegExp(`^check ${name}: (.*)$`, 'm').exec(run.output)?.[1];

  it('boots the cached 6.12 kernel', () => {
    expect(check('uname')).toBe(vmKernelVersion());
    expect(check('uname')).toMatch(/^6\.12\./);
    expect(run.bootMs).toBeGreaterThan(0);
  });

  it('loads ublk_drv, nbd and loop', () => {
    expect(check('ublk'), run.output).toBe('ok');
    expect(check('nbd'), run.output).toBe('ok');
    expect(check('loop'), run.output).toBe('ok');
  });

  it("runs the host's node with output on a pipe, in cwd, with the given environment", () => {
    expect(check('node')).toBe('2 undefined');
    expect(check('cwd')).toBe(shared);
    expect(check('env')).toBe("a b'c");
  });

  it('writes through to writable directories and nowhere else', () => {
    expect(readFileSync(join(shared, 'from-guest'), 'utf8')).toBe('written in the guest\n');
    expect(check('overlay')).toBe('ok');
    expect(() => readFileSync('/etc/qcow2-vm-test')).toThrow();
  });

  it('passes all of a large output through', () => {
    const lines = run.output.split('\n').filter((l) => l.startsWith('line '));
    expect(lines.length).toBe(100_000);
    expect(lines.at(-1)).toBe('line 100000');
  });

  it("returns the command's exit status", () => {
    expect(run.status).toBe(77);
  });

  it('rejects with the console when the guest dies, after one retry', async () => {
    const err = await runInVm('echo before the crash; echo c > /proc/sysrq-trigger; sleep 60', { timeoutMs: 120_000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VmError);
    const vmErr = err as VmError;
    expect(vmErr.kind).toBe('died');
    expect(vmErr.console).toMatch(/sysrq: Trigger a crash[\s\S]*--- \(retried\)[\s\S]*sysrq: Trigger a crash/);
    expect(vmErr.output).toContain('before the crash');
    expect(vmErr.message).toContain('Kernel panic');
  }, 180_000);

  it('kills the VM at the timeout and rejects with what it printed', async () => {
    const started = Date.now();
    const err = await runInVm('echo sleeping; sleep 600', { timeoutMs: 15_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmError);
    expect((err as VmError).kind).toBe('timeout');
    expect((err as VmError).console).toContain('vm: ready');
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('refuses a writable directory that does not exist, without booting', async () => {
    await expect(runInVm('true', { writable: ['/nonexistent/qcow2-vm'] })).rejects.toMatchObject({ kind: 'usage' });
  });
});
