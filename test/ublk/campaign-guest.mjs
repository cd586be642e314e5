#!/usr/bin/env node
// The ublk lane's campaign, run inside the 6.12 VM by test/ublk/campaign.test.ts (ublk_drv loaded,
// root): random op sequences on random images, side by side on the reference engine and through
// /dev/ublkbN served by `qcow2 ublk add --foreground` (src/verification/ublk-lane.ts), from the
// built dist/. Prints a line per sequence, the lane's counts of requests ("lane-stats: {...}") and
// one "campaign: ..." line, and on failure fast-check's report (seed, path, counterexample); exits
// 1 then.
//   QCOW2_UBLK_CAMPAIGN_RUNS (default 4), QCOW2_UBLK_CAMPAIGN_COMMANDS (default 20),
//   QCOW2_PROPERTY_SEED, QCOW2_PROPERTY_PATH (replay), QCOW2_UBLK_CAMPAIGN_SHRINK=1 (shrink a failure:
//   slow under TCG; by default the first failure is reported as it is).
import fc from 'fast-check';
import { runCampaign } from '../../dist/verification/campaign/run.js';
import { lane, lanesFor } from '../../dist/verification/engines.js';
import { ublkLane, ublkLaneStats } from '../../dist/verification/ublk-lane.js';

const env = process.env;
const runs = Number(env.QCOW2_UBLK_CAMPAIGN_RUNS ?? 4);
const maxCommands = Number(env.QCOW2_UBLK_CAMPAIGN_COMMANDS ?? 20);
const seed = env.QCOW2_PROPERTY_SEED ? Number(env.QCOW2_PROPERTY_SEED) : undefined;
const path = env.QCOW2_PROPERTY_PATH || undefined;
// The lanes of the `ublk-campaign` suite once src/verification/engines.ts lists them; until then the lane itself.
const listed = lanesFor('ublk-campaign');
const lanes = [lane('reference'), ...(listed.length > 0 ? listed : [ublkLane])];
// Sequences of up to maxCommands commands, not fast-check's small default (~5): a sequence's fixed
// cost (images created, servers started, images judged) is most of it under TCG.
fc.configureGlobal({ ...fc.readConfigureGlobal(), defaultSizeToMaxWhenMaxSpecified: true });

const t0 = Date.now();
let sequences = 0;
// Each sequence opens every lane once first: count the sequences by the reference lane's first open per image.
const seen = new Set();
const counted = lanes.map((l) =>
  l.name !== 'reference'
    ? l
    : {
        ...l,
        open: (p, o) => {
          if (!seen.has(p)) {
            seen.add(p);
            sequences++;
            console.log(`sequence ${sequences} at ${Math.round((Date.now() - t0) / 1000)} s`);
          }
          return l.open(p, o);
        },
      },
);
const details = await runCampaign(counted, { runs, maxCommands, seed, path, endOnFailure: env.QCOW2_UBLK_CAMPAIGN_SHRINK !== '1' });
const ms = Date.now() - t0;
console.log(`lane-stats: ${JSON.stringify(ublkLaneStats)}`);
if (details.failed) {
  console.log(fc.defaultReportMessage(details) ?? '');
  const err = details.errorInstance;
  console.log(`error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  console.log(`campaign: FAILED after ${details.numRuns} sequences in ${ms} ms (lanes ${lanes.map((l) => l.name).join(', ')})`);
} else {
  console.log(`campaign: ${details.numRuns} sequences passed in ${ms} ms (lanes ${lanes.map((l) => l.name).join(', ')}, seed ${details.seed})`);
}
// Now, even with a server left behind (one that never came up is killed, but may still be exiting).
process.exit(details.failed ? 1 : 0);
