/**
 * Every crash state of every crash workload (src/crash/workloads.ts), on each engine: the image
 * opens (repairing itself when dirty), `qemu-img check` finds no corruption, and every byte a
 * returned flush covered reads back. The counts are printed for the record.
 */
import { describe, expect, it } from 'vitest';
import { CRASH_ENGINES } from '../../src/crash/engines.js';
import { explore } from '../../src/crash/explore.js';
import { WORKLOADS } from '../../src/crash/workloads.js';
import { requireTool } from '../support/tools.js';

describe('crash states', () => {
  for (const [engine, open] of Object.entries(CRASH_ENGINES)) {
    for (const w of WORKLOADS) {
      it(`${engine}: ${w.name}`, async () => {
        await requireTool('qemu-img');
        const r = await explore(w, open, { maxFailures: 3 });
        console.log(`crash ${engine} ${w.name}: ${r.writes} writes, ${r.flushes} flushes, ${r.states} states, ${r.distinct} distinct, ${r.repaired} repaired, ${r.leaky} with leaks`);
        expect(r.failures).toEqual([]);
        expect(r.distinct).toBeGreaterThan(10);
      });
    }
  }
});
