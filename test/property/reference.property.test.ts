/**
 * Model-based: random op sequences on the reference engine, over images created with random
 * options, against the byte-array model; QEMU judges each final image (src/verification/campaign/run.ts).
 * A failure prints fast-check's seed and path: replay with QCOW2_PROPERTY_SEED and
 * QCOW2_PROPERTY_PATH, then keep it as a named case in regressions.test.ts.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { campaignProperty } from '../../src/verification/campaign/run.js';
import { lane } from '../../src/verification/engines.js';
import { openReference } from '../../src/reference/open.js';

const RUNS = Number(process.env['QCOW2_PROPERTY_RUNS'] ?? 25);

describe('reference engine against the byte-array model', () => {
  it('random op sequences on random images', async () => {
    const seed = process.env['QCOW2_PROPERTY_SEED'];
    const path = process.env['QCOW2_PROPERTY_PATH'];
    await fc.assert(campaignProperty([lane('reference')]), {
      numRuns: RUNS,
      ...(seed ? { seed: Number(seed) } : {}),
      ...(path ? { path } : {}),
      endOnFailure: process.env['CI'] === 'true',
    });
  }, 900_000);
});
