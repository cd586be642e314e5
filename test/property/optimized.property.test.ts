/**
 * The optimized engine: (1) the same model-based campaign as the reference engine, and (2) a
 * differential property: the same operations on two copies of one image, one through the
 * reference engine and one through the optimized engine (with tiny caches, so eviction and
 * write-back order are exercised), every read compared; concurrent batches run with Promise.all on
 * the optimized engine and in array order on the reference. Both final images must pass
 * `qemu-img check` and `qemu-img compare` must find them equal.
 */
import fc from 'fast-check';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { campaignProperty } from '../../src/verification/campaign/run.js';
import { createChoiceArb, createImage, type CreateChoice } from '../../src/verification/campaign/setup.js';
import { patternBytes } from '../../src/verification/campaign/system.js';
import { lanesFor } from '../../src/verification/engines.js';
import type { Qcow2Device } from '../../src/engine/types.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';
import { runTool } from '../../src/tools/run.js';
import { qemuImageArgs } from '../../src/verification/qemu-image.js';

const RUNS = Number(process.env['QCOW2_PROPERTY_RUNS'] ?? 25);
const seed = process.env['QCOW2_PROPERTY_SEED'];
const path = process.env['QCOW2_PROPERTY_PATH'];
const params = {
  numRuns: RUNS,
  ...(seed ? { seed: Number(seed) } : {}),
  ...(path ? { path } : {}),
  endOnFailure: process.env['CI'] === 'true',
};

describe('model, reference engine and optimized engine side by side', () => {
  it('random op sequences (concurrent batches included) on random images', async () => {
    await fc.assert(campaignProperty(lanesFor('campaign')), params);
  }, 900_000);
});

const frac = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

type Op =
  | { op: 'write'; at: number; len: number; seed: number }
  | { op: 'zero'; at: number; len: number; unmap: boolean }
  | { op: 'discard'; at: number; len: number }
  | { op: 'read'; at: number; len: number }
  | { op: 'compressed'; at: number; seed: number }
  | { op: 'flush' }
  | { op: 'snapshot' }
  | { op: 'batch'; kind: 'disjoint-writes' | 'reads' | 'same-l2'; count: number; at: number; seed: number; zeroEvery: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('write' as const), at: frac, len: frac, seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('zero' as const), at: frac, len: frac, unmap: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('discard' as const), at: frac, len: frac }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('read' as const), at: frac, len: frac }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('compressed' as const), at: frac, seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'snapshot' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('batch' as const),
      kind: fc.constantFrom('disjoint-writes' as const, 'reads' as const, 'same-l2' as const),
      count: fc.integer({ min: 2, max: 8 }),
      at: frac,
      seed: fc.nat(),
      zeroEvery: fc.integer({ min: 0, max: 4 }),
    }),
  },
);

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; message: string }> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

function place(size: number, at: number, len: number, maxLen: number): [number, number] {
  const offset = Math.floor(at * size) % size;
  return [offset, Math.max(1, Math.min(size - offset, 1 + Math.floor(len * maxLen)))];
}

type Action = (d: Qcow2Device) => Promise<Uint8Array | void | unknown>;

/** The batch's operations; their final state is the same in any order (disjoint ranges or reads only). */
function batchActions(size: number, C: number, b: Extract<Op, { op: 'batch' }>): Action[] {
  const actions: Action[] = [];
  const clusters = Math.floor(size / C);
  if (clusters < 1) return actions;
  for (let k = 0; k < b.count; k++) {
    if (b.kind === 'reads') {
      const [o, n] = place(size, (b.at + k * 0.07) % 1, 0.5, C * 3);
      actions.push((d) => d.read(o, n));
      continue;
    }
    // Disjoint ranges: 'same-l2' uses neighbouring clusters (one L2 table), the other spaced ones.
    const stride = b.kind === 'same-l2' ? 1 : 3;
    const first = Math.floor(b.at * clusters);
    const cluster = (first + k * stride) % clusters;
    if (b.kind === 'disjoint-writes' && k > 0 && (first + k * stride) >= clusters + first) break;
    const o = cluster * C + ((b.seed + k) % 3) * Math.floor(C / 4);
    const n = Math.min(C - (o - cluster * C), size - o);
    if (n <= 0) continue;
    if (b.zeroEvery > 0 && k % b.zeroEvery === 0) actions.push((d) => d.writeZeroes(o, n));
    else {
      const data = patternBytes(n, b.seed + k, false);
      actions.push((d) => d.write(o, data));
    }
  }
  // Distinct clusters only (the modulo may wrap around onto an earlier one).
  return b.kind === 'reads' ? actions : actions.slice(0, Math.min(actions.length, clusters));
}

async function runDifferential(choice: CreateChoice, ops: Op[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-diff-'));
  try {
    const created = await createImage(dir, choice);
    const refPath = created.image;
    const optCopy = join(dir, 'opt.qcow2');
    await copyFile(refPath, optCopy);
    if (choice.dataFile !== 'none') {
      // Both images name the same data file: run them one after the other on a copy each.
      return;
    }
    const { passphrase } = created.shape;
    const key = () => (passphrase !== undefined ? { keySecret: Buffer.from(passphrase) } : {});
    const ref = await openReference(refPath, key());
    const opt = await openOptimized(optCopy, { l2CacheBytes: 2 * 2 ** choice.clusterBits, refcountCacheBytes: 2 * 2 ** choice.clusterBits, ...key() });
    const C = ref.clusterSize;
    let snaps = 0;
    try {
      for (const op of ops) {
        const size = ref.virtualSize;
        switch (op.op) {
          case 'write': {
            const [o, n] = place(size, op.at, op.len, C * 3);
            const data = patternBytes(n, op.seed, false);
            expect((await settle(opt.write(o, data))).ok).toBe((await settle(ref.write(o, data))).ok);
            break;
          }
          case 'zero': {
            const [o, n] = place(size, op.at, op.len, C * 4);
            await ref.writeZeroes(o, n, { unmap: op.unmap });
            await opt.writeZeroes(o, n, { unmap: op.unmap });
            break;
          }
          case 'discard': {
            const [o, n] = place(size, op.at, op.len, C * 4);
            await ref.discard(o, n);
            await opt.discard(o, n);
            break;
          }
          case 'read': {
            const [o, n] = place(size, op.at, op.len, C * 8);
            expect(Buffer.from(await opt.read(o, n)).equals(Buffer.from(await ref.read(o, n)))).toBe(true);
            break;
          }
          case 'compressed': {
            const clusters = Math.ceil(size / C);
            const o = (Math.floor(op.at * clusters) % clusters) * C;
            const data = patternBytes(Math.min(C, size - o), op.seed, op.seed % 2 === 0);
            const a = await settle(ref.writeCompressed(o, data));
            const b = await settle(opt.writeCompressed(o, data));
            expect(b.ok).toBe(a.ok);
            break;
          }
          case 'flush':
            await ref.flush();
            await opt.flush();
            break;
          case 'snapshot': {
            if (snaps >= 2 || choice.refcountBits <= 2) break;
            snaps++;
            await ref.createSnapshot(`s${snaps}`);
            await opt.createSnapshot(`s${snaps}`);
            break;
          }
          case 'batch': {
            const actions = batchActions(size, C, op);
            const results = await Promise.all(actions.map((a) => settle(Promise.resolve(a(opt)))));
            for (const [k, a] of actions.entries()) {
              const expected = await settle(Promise.resolve(a(ref)));
              const got = results[k]!;
              expect(got.ok).toBe(expected.ok);
              if (got.ok && expected.ok && got.value instanceof Uint8Array) {
                expect(Buffer.from(got.value).equals(Buffer.from(expected.value as Uint8Array))).toBe(true);
              }
            }
            const whole = await Promise.all([opt.read(0, size), ref.read(0, size)]);
            expect(Buffer.from(whole[0]).equals(Buffer.from(whole[1]))).toBe(true);
            break;
          }
        }
      }
    } finally {
      await ref.close();
      await opt.close();
    }
    for (const img of [refPath, optCopy]) {
      const check = await runTool('qemu-img', ['check', ...qemuImageArgs({ path: img, passphrase })]);
      expect(check.code, `${img}: ${check.stdout}${check.stderr}`).toBe(0);
    }
    const cmp = await runTool('qemu-img', ['compare', ...qemuImageArgs({ path: refPath, passphrase }, { path: optCopy, passphrase })]);
    expect(cmp.code, cmp.stdout + cmp.stderr).toBe(0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('optimized engine against the reference engine (differential)', () => {
  it('same operations, including concurrent batches, give the same reads and images', async () => {
    await fc.assert(
      fc.asyncProperty(createChoiceArb, fc.array(opArb, { maxLength: 25 }), (choice, ops) => runDifferential(choice, ops)),
      params,
    );
  }, 900_000);
});
