/** The image checker: `qemu-img check` for qcow2 images, on any BlockFile. */
export { checkAndRepair, checkImage, type CheckOptions } from './check-image.js';
export { checkHuman, checkJson, repairedHuman, type CheckOutput } from './output.js';
export type { CheckCounts, CheckReport, RepairMode } from './result.js';
