/**
 * The verification wing as a library: 'qcow2-verified/verification'. The engine lanes, the
 * model-based campaign (run it on a lane, or on your own opener of a Qcow2Device), and the crash
 * explorer (every crash state of a workload, judged). Both judge with QEMU's tools: qemu-img and
 * qemu-io must be on the PATH (the campaign honours QEMU_IMG).
 */

// The engine lanes and the suites each runs in.
export { LANES, lane, lanesFor, type EngineLane, type LaneOpen, type Suite } from './engines.js';
export type { OpenOptions, Qcow2Device } from '../engine/types.js';

// The model-based campaign: random op sequences on random images, checked against a byte-array
// model, all engines given side by side; each image judged by qemu-img check and convert.
export { campaignProperty, runCampaign, runSequence, type CampaignOptions, type CreateChoice, type Engine } from './campaign/run.js';

// The crash explorer: a workload recorded on an engine, every crash state of its log judged.
export { describeState, explore, type Exploration, type ExploreOptions, type Failure } from './crash/explore.js';
export type { CrashState, StateOptions } from './crash/states.js';
export { FAULT_WORKLOADS, WORKLOADS } from './crash/workloads.js';
export type { GuestOp, Open, Workload } from './crash/types.js';
