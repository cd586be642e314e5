import { LANES, lane, runCampaign } from 'qcow2-verified/verification';
console.log(LANES.map((l) => l.name)); // the engine lanes
const details = await runCampaign([lane('reference')], { runs: 3 }); // each run judged by qemu-img check + convert
console.log(details.failed ? `campaign failed: seed ${details.seed}` : `campaign: ${details.numRuns} runs passed`);
