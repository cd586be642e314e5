/**
 * Us -> QEMU: for every create option combination (images made by `qcow2 create`), random `qcow2 io` scripts of writes, zero
 * writes, compressed writes, discards and flushes leave an image that `qemu-img check` finds clean
 * and `qemu-img compare` finds equal to a raw file that `qemu-io` wrote with the same script.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { ROUND_TRIP_IMAGES, roundTrip, scriptArb, type RoundTripRun } from '../../src/verification/campaign/roundtrip.js';
import { qcow2 } from '../support/cli.js';

const SCRIPTS = Number(process.env['QCOW2_ROUNDTRIP_SCRIPTS'] ?? 3);

const viaCli: RoundTripRun = {
  async create(path, options, size, backing) {
    const b = backing ? ['-b', backing.path, '-F', backing.format] : [];
    const r = await qcow2(['create', '-q', '-f', 'qcow2', '-o', options, ...b, path, String(size)]);
    if (r.exitCode !== 0) throw new Error(`qcow2 create failed: ${r.stderr}`);
  },
  async io(path, script) {
    const r = await qcow2(['io', ...script.flatMap((c) => ['-c', c]), path]);
    if (r.exitCode !== 0) process.stderr.write(r.stdout + r.stderr);
    return r.exitCode ?? -1;
  },
};

describe('qcow2 io scripts leave images QEMU accepts and reads as qemu-io wrote them', () => {
  for (const img of ROUND_TRIP_IMAGES) {
    it(`${img.options}${img.backing ? ` + ${img.backing} backing` : ''}`, async () => {
      await fc.assert(
        fc.asyncProperty(scriptArb(img), (script) => roundTrip(viaCli, img, script)),
        { numRuns: SCRIPTS, endOnFailure: process.env['CI'] === 'true' },
      );
    }, 600_000);
  }
});
