/**
 * The ublk lane of the model-based campaign (src/verification/ublk-lane.ts), in the 6.12 VM
 * (test/support/vm.ts): one boot runs test/ublk/campaign-guest.mjs, which runs random op sequences
 * on random images side by side on the reference engine and through /dev/ublkbN (O_DIRECT) served
 * by `qcow2 ublk add --foreground`, every result checked against the byte-array model and the
 * lanes against each other, each final image judged by our structural check, qemu-img check and
 * qemu-img convert against the model (src/verification/campaign/run.ts), as for every lane.
 * Under TCG a sequence takes 40-60 s (the server takes 4-11 s to start, and restarts around what a
 * block device cannot express), so it runs few: QCOW2_UBLK_CAMPAIGN_RUNS (default 4: 3-5 min)
 * of up to QCOW2_UBLK_CAMPAIGN_COMMANDS (default 20) commands; QCOW2_PROPERTY_SEED and
 * QCOW2_PROPERTY_PATH replay a failure, QCOW2_UBLK_CAMPAIGN_SHRINK=1 shrinks it.
 * Skipped without the VM cache (`bash test/vm/setup.sh`) or the ublk addon, except under CI=true,
 * where that fails.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadUblkAddon } from '../../src/ublk/native.js';
import { runInVm, vmAvailable } from '../support/vm.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const available = vmAvailable();
const addon = loadUblkAddon() !== null;
const reason = !available.ok ? available.reason : !addon ? 'the ublk addon is not built' : '';

if (reason !== '' && process.env['CI'] === 'true') {
  describe('the ublk lane of the campaign', () => {
    it('can run under CI', () => {
      throw new Error(`the ublk campaign cannot run: ${reason}`);
    });
  });
}

const PASSED_ENV = ['QCOW2_UBLK_CAMPAIGN_RUNS', 'QCOW2_UBLK_CAMPAIGN_COMMANDS', 'QCOW2_PROPERTY_SEED', 'QCOW2_PROPERTY_PATH', 'QCOW2_UBLK_CAMPAIGN_SHRINK'];

describe.skipIf(reason !== '')(`the ublk lane of the campaign, in a VM${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('random op sequences on random images, through qcow2 ublk and /dev/ublkbN with O_DIRECT', async () => {
    const env: Record<string, string> = {};
    for (const k of PASSED_ENV) if (process.env[k]) env[k] = process.env[k] as string;
    const run = await runInVm(`modprobe ublk_drv && node ${REPO}test/ublk/campaign-guest.mjs`, { cwd: REPO, timeoutMs: 540_000, env });
    const summary = run.output.split('\n').filter((l) => /^(campaign|lane-stats):/.test(l));
    console.log(`ublk campaign: VM boot ${run.bootMs} ms, whole run ${run.totalMs} ms\n${summary.join('\n')}`);
    if (run.status !== 0 || !/^campaign: \d+ sequences passed/m.test(run.output)) {
      throw new Error(`the ublk campaign failed (exit ${run.status}):\n${run.output}`);
    }
    // The lane did go through the device: servers started, O_DIRECT reads and writes.
    const stats = JSON.parse(/^lane-stats: (.*)$/m.exec(run.output)?.[1] ?? '{}') as Record<string, number>;
    expect(stats['starts'], run.output).toBeGreaterThan(0);
    expect(stats['preads']).toBeGreaterThan(0);
    expect(stats['pwrites']).toBeGreaterThan(0);
  }, 600_000);
});
