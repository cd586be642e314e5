/**
 * EIO and ENOSPC at every kind of tagged metadata write (and at data writes and flushes), at the
 * first, a middle and the last such operation of a workload, on both engines: the request fails
 * with a typed I/O error, reads keep showing the guest's bytes, and the image left behind opens,
 * checks without corruption and holds everything a returned flush covered
 * (src/verification/crash/faults.ts). The engines: the lanes of the error-injection suite
 * (src/verification/engines.ts).
 */
import { describe, expect, it } from 'vitest';
import { runFault } from '../../src/verification/crash/faults.js';
import { record } from '../../src/verification/crash/workload.js';
import { FAULT_WORKLOADS } from '../../src/verification/crash/workloads.js';
import { lanesFor } from '../../src/verification/engines.js';
import type { FaultRule } from '../../src/io/fault-file.js';
import { requireTool } from '../support/tools.js';

/** Growth injects 80 faults, each a run and a qemu-img check: ~30 s idle. A bound, not an assertion. */
const WORKLOAD_TIMEOUT_MS = 180_000;

const TAGS = ['l2', 'refcount-block', 'refcount-table', 'l1', 'header', 'snapshot-table', 'data', 'flush'] as const;

describe('error injection', () => {
  for (const { name: engine, open } of lanesFor('error-injection')) {
    for (const w of FAULT_WORKLOADS) {
      it(`${engine}: ${w.name}`, async () => {
        await requireTool('qemu-img');
        // A clean run counts the operations of each kind.
        const clean = await record(w, open);
        const counts = new Map<string, number>();
        for (const op of clean.log) {
          const key = op.kind === 'write' ? op.tag : op.kind;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        const rules: FaultRule[] = [];
        for (const tag of TAGS) {
          const n = counts.get(tag) ?? 0;
          // The mix workload makes every kind of write; the lazy one only some.
          if (w.name === 'metadata-mix') expect(n, `${tag} operations in a clean run`).toBeGreaterThan(0);
          if (w.name === 'growth' && (tag === 'refcount-table' || tag === 'l1')) expect(n, `${tag} growth in a clean run`).toBeGreaterThan(0);
          if (n === 0) continue;
          for (const nth of new Set([1, Math.ceil(n / 2), n])) {
            rules.push({ on: tag, nth, code: 'EIO' }, { on: tag, nth, code: 'ENOSPC', sticky: true });
          }
        }
        const failures: string[] = [];
        let fired = 0;
        for (const rule of rules) {
          const r = await runFault(w, open, rule);
          if (r.fired) fired++;
          if (!r.fired) failures.push(`${JSON.stringify(rule)} never fired`);
          for (const p of r.problems) failures.push(`${JSON.stringify(rule)}: ${p}`);
        }
        console.log(`faults ${engine} ${w.name}: ${rules.length} injected (${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')})`);
        expect(failures).toEqual([]);
        expect(fired).toBeGreaterThan(10);
      }, WORKLOAD_TIMEOUT_MS);
    }
  }
});
