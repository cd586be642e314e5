// Jazzer.js fuzz target: the 'check' target of `qcow2 fuzz` and its oracles (src/verification/fuzz/jazzer.ts
// says how the bytes choose a seed image and its mutations). Needs `npm run build` and the seed
// images of scripts/jazzer-seeds.mjs; a finding is thrown.
import { jazzerTarget } from '../../dist/verification/fuzz/jazzer.js';

export const fuzz = jazzerTarget('check');
