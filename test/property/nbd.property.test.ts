/**
 * The NBD lane of the model-based campaign: random op sequences on random images, run side by side
 * on the reference engine and through `qcow2 nbd` driven by libnbd over a unix socket
 * (src/verification/nbd-lane.ts), every result checked against the byte-array model and the lanes
 * against each other; each final image judged by our structural check, qemu-img check and qemu-img
 * convert against the model (src/verification/campaign/run.ts). Each sequence starts a server and
 * a client (and restarts them around the operations NBD cannot express), so it runs fewer
 * sequences than the in-process campaign: QCOW2_NBD_PROPERTY_RUNS (default 8).
 */
import fc from 'fast-check';
import { beforeAll, describe, it } from 'vitest';
import { campaignProperty } from '../../src/verification/campaign/run.js';
import { lane, lanesFor } from '../../src/verification/engines.js';
import { requireTool } from '../support/tools.js';

const RUNS = Number(process.env['QCOW2_NBD_PROPERTY_RUNS'] ?? 8);
const seed = process.env['QCOW2_PROPERTY_SEED'];
const path = process.env['QCOW2_PROPERTY_PATH'];

beforeAll(async () => {
  await requireTool('nbdsh'); // the lane's client is libnbd's Python binding, as nbdsh's
});

describe('model, reference engine and the NBD lane side by side', () => {
  it('random op sequences on random images, through qcow2 nbd and libnbd', async () => {
    await fc.assert(campaignProperty([lane('reference'), ...lanesFor('nbd-campaign')], 20), {
      numRuns: RUNS,
      ...(seed ? { seed: Number(seed) } : {}),
      ...(path ? { path } : {}),
      endOnFailure: process.env['CI'] === 'true',
    });
  }, 600_000);
});
