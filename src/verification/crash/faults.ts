/**
 * Error injection: a workload runs with one chosen write (the n-th L2 update, refcount block,
 * refcount table write, L1 update, header or snapshot table write, data write) or flush failing
 * with EIO or ENOSPC. The failing request must fail with a typed I/O error; later requests either
 * succeed or fail with typed errors, and reads always show what the guest wrote; the image left on
 * the disk must open, check without corruption, and hold everything a returned flush covered.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isQcow2Error } from '../../errors.js';
import { FaultFile, type FaultRule } from '../../io/fault-file.js';
import { describeError } from './describe.js';
import { modelOf, modelStep, rangeOf, runStep } from './guest-ops.js';
import { firstDifference, judge } from './judge.js';
import type { Open, Step, Workload } from './types.js';
import { prepareImage, scratchDir } from './workload.js';

export interface FaultOutcome {
  rule: FaultRule;
  /** Whether the rule fired (the workload reached the n-th such operation). */
  fired: boolean;
  /** Requests that failed, and how many of those came after the injected failure. */
  failedRequests: number;
  problems: string[];
}

export async function runFault(w: Workload, open: Open, rule: FaultRule): Promise<FaultOutcome> {
  const dir = await scratchDir('qcow2-fault-');
  const out: FaultOutcome = { rule, fired: false, failedRequests: 0, problems: [] };
  try {
    const { path, start } = await prepareImage(w, dir);
    let faults: FaultFile | undefined;
    // One count for the image and its data file: the n-th such operation on either fails.
    const dev = await open(path, {
      noFlush: true,
      compressionThreads: 0,
      wrapFile: (f, role) => (role === 'image' ? (faults = new FaultFile(f, rule)) : new FaultFile(f, rule, faults)),
    });
    const model = modelOf(w, start);
    let acked = start.slice();
    /** Ranges whose bytes are unsettled on the disk (since the last returned flush, or failed). */
    let sinceAck: [number, number][] = [];
    const failedRanges: [number, number][] = [];
    /** Sizes a resize since the last returned flush (or a failed one) may have left. */
    let sizesSinceAck: number[] = [];
    const failedSizes: number[] = [];
    // The request the fault hit must fail with an I/O error; later ones may fail with any typed
    // error (a write past a resize that failed is a usage error).
    const fail = (err: unknown, what: string, hit: boolean) => {
      out.failedRequests++;
      if (!isQcow2Error(err)) out.problems.push(`${what} failed with ${describeError(err)}`);
      else if (hit && err.code !== 'io') out.problems.push(`${what} failed with ${err.describe()}, expected an I/O error`);
    };
    for (const op of [...w.ops, { op: 'close' } as Step]) {
      const range = rangeOf(op, model);
      const failuresBefore = faults!.failures;
      try {
        await runStep(dev, op);
        if (op.op === 'flush' || op.op === 'close') {
          acked = model.bytes.slice();
          sinceAck = [];
          sizesSinceAck = [];
        }
        modelStep(model, op);
        if (range) sinceAck.push(range);
        if (op.op === 'resize') sizesSinceAck.push(op.size);
      } catch (err) {
        fail(err, op.op, faults!.failures > failuresBefore);
        if (range) failedRanges.push(range);
        if (range) sinceAck.push(range);
        if (op.op === 'resize') failedSizes.push(op.size);
      }
      // Reads go on whatever happened, and show the guest's bytes (a failed request's either way).
      if (op.op !== 'close') {
        try {
          const got = await dev.read(0, Math.min(dev.virtualSize, model.size));
          const bad = firstDifference(got, { bytes: model.bytes, unsettled: failedRanges });
          if (bad !== -1) out.problems.push(`after ${op.op}: guest byte ${bad} reads ${got[bad]}, the guest wrote ${model.bytes[bad]}`);
        } catch (err) {
          out.problems.push(`a read after ${op.op} failed: ${describeError(err)}`);
        }
      }
    }
    out.fired = faults!.fired;
    const image = new Uint8Array(await readFile(path));
    const data = w.dataFile === undefined ? undefined : { name: w.dataFile, bytes: new Uint8Array(await readFile(join(dir, w.dataFile))) };
    const sizes = [acked.byteLength, ...sizesSinceAck, ...failedSizes];
    const verdict = await judge(data ? { image, data } : { image }, { bytes: acked, unsettled: [...sinceAck, ...failedRanges], sizes }, dir, 'after');
    out.problems.push(...verdict.problems);
    if (out.fired && out.failedRequests === 0) out.problems.push('the injected failure was not reported by any request');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}
