/**
 * Concurrent batches. Writes, zero writes and discards of neighbouring, byte-disjoint ranges that share
 * clusters (a range of half, one or one and a half clusters, starting a quarter, half or three
 * quarters into a cluster, so neighbours meet inside a cluster or a subcluster and several of them
 * allocate in one L2 table at once), with reads over them. On engines that take concurrent
 * requests they are all in flight together (Promise.all); on the others they run in order.
 *
 * The final contents do not depend on the order (the ranges are disjoint), so the model applies
 * them in any order. A read in flight with the writes may see each write done or not, but never
 * half done: within each write's range it returns either the bytes before the batch or after it.
 */
import type fc from 'fast-check';
import { ensure } from '../check.js';
import type { Model } from '../model.js';
import { type Lane, patternBytes, sameBytes, type System } from '../system.js';
import { expectRange } from './data.js';

type Cmd = fc.AsyncCommand<Model, System>;

interface Piece {
  kind: 'write' | 'zero' | 'discard';
  offset: number;
  length: number;
  /** The bytes of a write. */
  data: Uint8Array | undefined;
  unmap: boolean;
}

export class BatchCommand implements Cmd {
  constructor(
    readonly at: number,
    readonly count: number,
    readonly step: number,
    readonly cut: number,
    readonly seed: number,
    readonly zeroEvery: number,
    readonly reads: number,
  ) {}

  check = () => true;

  private pieces(model: Model): Piece[] {
    const C = model.shape.clusterSize;
    const step = Math.max(1, Math.floor((C * (1 + this.step)) / 2));
    const clusters = Math.ceil(model.size / C);
    const start = (Math.floor(this.at * clusters) % clusters) * C + Math.floor((C * (1 + this.cut)) / 4);
    const out: Piece[] = [];
    for (let k = 0; k < this.count; k++) {
      const offset = start + k * step;
      const length = Math.min(step, model.size - offset);
      if (length <= 0) break;
      const kind = this.zeroEvery > 0 && k % this.zeroEvery === 0 ? ((this.seed + k) % 3 === 0 ? 'discard' : 'zero') : 'write';
      out.push({ kind, offset, length, data: kind === 'write' ? patternBytes(length, this.seed + k, false) : undefined, unmap: k % 2 === 1 });
    }
    return out;
  }

  async run(model: Model, sys: System): Promise<void> {
    const pieces = this.pieces(model);
    if (pieces.length === 0) return;
    const from = pieces[0]!.offset;
    const to = pieces[pieces.length - 1]!.offset + pieces[pieces.length - 1]!.length;
    const reads = Array.from({ length: this.reads }, (_, r) => {
      const offset = Math.min(to - 1, from + Math.floor(((to - from) * r) / (this.reads + 1)));
      return { offset, length: Math.min(to - offset, Math.max(1, Math.floor((to - from) / 2))) };
    });
    const before = model.bytes.slice(from, to);
    for (const p of pieces) {
      if (p.kind === 'write') model.write(p.offset, p.data as Uint8Array);
      else if (p.kind === 'zero') model.zero(p.offset, p.length);
      else model.discard(p.offset, p.length);
    }
    const after = model.bytes.slice(from, to);
    for (const lane of sys.lanes) {
      const results = await runBatch(lane, pieces, reads);
      results.forEach((got, r) => {
        const read = reads[r]!;
        const problem = checkRead(got, read.offset, pieces, before, after, from);
        ensure(problem === undefined, `${lane.engine.name} engine, read ${r} of [0x${read.offset.toString(16)}, +${read.length}) in a batch: ${problem}`);
      });
    }
    await expectRange(model, sys, from, to - from);
  }

  toString = () =>
    `batch(${this.at.toFixed(4)}, ${this.count} x ${this.step + 1}/2 cluster from ${this.cut + 1}/4, seed ${this.seed}, zero every ${this.zeroEvery}, ${this.reads} reads)`;
}

/** The batch's requests on one lane, all at once when the engine allows; the reads' results. */
async function runBatch(lane: Lane, pieces: Piece[], reads: { offset: number; length: number }[]): Promise<Uint8Array[]> {
  const d = lane.dev;
  const writes = pieces.map((p) => () => {
    if (p.kind === 'write') return d.write(p.offset, p.data as Uint8Array);
    if (p.kind === 'zero') return d.writeZeroes(p.offset, p.length, { unmap: p.unmap });
    return d.discard(p.offset, p.length);
  });
  const readers = reads.map((r) => () => d.read(r.offset, r.length));
  // Reads go between the writes, so that they are in flight together.
  const order: (() => Promise<unknown>)[] = [];
  const n = Math.max(writes.length, readers.length);
  for (let i = 0; i < n; i++) {
    if (writes[i]) order.push(writes[i]!);
    if (readers[i]) order.push(readers[i]!);
  }
  const done: unknown[] = [];
  if (lane.engine.concurrent) done.push(...(await Promise.all(order.map((f) => f()))));
  else for (const f of order) done.push(await f());
  return done.filter((x): x is Uint8Array => x instanceof Uint8Array);
}

/** Whether a read (at `offset`) shows, in each write's range, wholly the old or wholly the new bytes. */
function checkRead(got: Uint8Array, offset: number, pieces: Piece[], before: Uint8Array, after: Uint8Array, from: number): string | undefined {
  const end = offset + got.byteLength;
  for (const p of pieces) {
    const a = Math.max(offset, p.offset);
    const b = Math.min(end, p.offset + p.length);
    if (a >= b) continue;
    const mine = got.subarray(a - offset, b - offset);
    const old = before.subarray(a - from, b - from);
    const now = after.subarray(a - from, b - from);
    if (sameBytes(mine, old) !== -1 && sameBytes(mine, now) !== -1) {
      return `bytes [0x${a.toString(16)}, 0x${b.toString(16)}) are neither all from before the ${p.kind} nor all from after it`;
    }
  }
  return undefined;
}
