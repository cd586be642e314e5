import { describe, expect, it } from 'vitest';
import { nextOffset, requestOffsets } from '../../src/bench/requests.js';
import { completedLine, flushLine, sendingLine } from '../../src/bench/report.js';
import { runBench, type BenchPlan, type BenchTarget } from '../../src/bench/runner.js';
import { intOption, qemuStrtoul } from '../../src/bench/numbers.js';

type Event = { kind: 'read' | 'write' | 'flush'; offset?: number; inFlight: number; data?: Uint8Array };

/** A target whose requests complete after a pseudo-random number of macrotask turns. */
class FakeTarget implements BenchTarget {
  readonly events: Event[] = [];
  inFlight = 0;
  maxInFlight = 0;
  flushesDuringRequests = 0;
  private seed = 12345;
  constructor(
    readonly virtualSize: number,
    private readonly failAt?: number,
  ) {}
  private delay(): Promise<void> {
    this.seed = (this.seed * 1103515245 + 12345) % 2 ** 31;
    let turns = this.seed % 4;
    return new Promise((resolve) => {
      const tick = () => (turns-- <= 0 ? resolve() : setImmediate(tick));
      tick();
    });
  }
  private async request(event: Event): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.events.push({ ...event, inFlight: this.inFlight });
    await this.delay();
    this.inFlight--;
  }
  async readInto(offset: number, _target: Uint8Array): Promise<void> {
    await this.request({ kind: 'read', offset, inFlight: 0 });
    if (offset === this.failAt) throw new Error('injected read failure');
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.request({ kind: 'write', offset, inFlight: 0, data: data.slice() });
  }
  async flush(): Promise<void> {
    if (this.inFlight > 0) this.flushesDuringRequests++;
    this.events.push({ kind: 'flush', inFlight: this.inFlight });
    await this.delay();
  }
}

function plan(over: Partial<BenchPlan>): BenchPlan {
  return { write: false, count: 100, depth: 8, bufferSize: 4096, step: 4096, offset: 0, pattern: 0, flushInterval: 0, drainOnFlush: true, cache: 'writeback', ...over };
}

describe('bench request offsets', () => {
  it('wrap modulo the image size, the first offset taken as given', () => {
    expect([...requestOffsets(0, 4096, 3 * 4096, 7)]).toEqual([0, 4096, 8192, 0, 4096, 8192, 0]);
    expect([...requestOffsets(1024, 5000, 10240, 4)]).toEqual([1024, 6024, 784, 5784]);
    expect([...requestOffsets(1 << 20, 4096, 1 << 20, 2)]).toEqual([1 << 20, 4096]);
    expect(nextOffset(0, 1 << 20, 1 << 20)).toBe(0);
  });
});

describe('bench runner', () => {
  it('sends COUNT reads in QEMU order with DEPTH in flight', async () => {
    const target = new FakeTarget(64 * 4096);
    const result = await runBench(target, plan({ count: 200, depth: 8 }));
    expect(result.requests).toBe(200);
    expect(target.events.map((e) => e.offset)).toEqual([...requestOffsets(0, 4096, 64 * 4096, 200)]);
    expect(target.maxInFlight).toBe(8);
    expect(target.inFlight).toBe(0);
  });

  it('never exceeds the count when depth is larger', async () => {
    const target = new FakeTarget(1 << 20);
    await runBench(target, plan({ count: 5, depth: 64 }));
    expect(target.events).toHaveLength(5);
    expect(target.maxInFlight).toBe(5);
  });

  it('completes at once with count 0', async () => {
    const target = new FakeTarget(0);
    const result = await runBench(target, plan({ count: 0 }));
    expect(result.requests).toBe(0);
    expect(target.events).toHaveLength(0);
  });

  it('writes the pattern byte', async () => {
    const target = new FakeTarget(1 << 20);
    await runBench(target, plan({ write: true, count: 20, depth: 4, pattern: 0xa5, bufferSize: 512, step: 512 }));
    const writes = target.events.filter((e) => e.kind === 'write');
    expect(writes).toHaveLength(20);
    for (const w of writes) expect(w.data?.every((b) => b === 0xa5)).toBe(true);
  });

  it('drains before each interval flush', async () => {
    const target = new FakeTarget(1 << 20);
    const result = await runBench(target, plan({ write: true, count: 100, depth: 4, flushInterval: 10 }));
    const flushes = target.events.filter((e) => e.kind === 'flush');
    // remaining (not yet submitted) hits 90, 80, …, 0: ten flushes, the last after the clock stops.
    expect(flushes).toHaveLength(10);
    expect(result.flushes).toBe(10);
    expect(target.flushesDuringRequests).toBe(0);
    // `remaining` counts requests not yet submitted: ten are submitted before each flush.
    const counts: number[] = [];
    let n = 0;
    for (const e of target.events) {
      if (e.kind === 'flush') {
        counts.push(n);
        n = 0;
      } else n++;
    }
    expect(counts).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
  });

  it('with --no-drain flushes alongside requests, and once per final completion', async () => {
    const target = new FakeTarget(1 << 20);
    const result = await runBench(target, plan({ write: true, count: 100, depth: 4, flushInterval: 10, drainOnFlush: false }));
    // remaining hits 90, 80, …, 10 during submission (9 flushes), then is 0 for the last 4 completions.
    expect(result.flushes).toBe(13);
    expect(target.events.filter((e) => e.kind === 'write')).toHaveLength(100);
  });

  it('writethrough flushes after every write; unsafe drops flushes', async () => {
    const wt = new FakeTarget(1 << 20);
    await runBench(wt, plan({ write: true, count: 12, depth: 3, cache: 'writethrough' }));
    expect(wt.events.filter((e) => e.kind === 'flush')).toHaveLength(12);
    const unsafe = new FakeTarget(1 << 20);
    const result = await runBench(unsafe, plan({ write: true, count: 100, depth: 4, flushInterval: 10, cache: 'unsafe' }));
    expect(result.flushes).toBe(10);
    expect(unsafe.events.filter((e) => e.kind === 'flush')).toHaveLength(0);
  });

  it('fails with the first failed request, after the others settle', async () => {
    const target = new FakeTarget(64 * 4096, 5 * 4096);
    await expect(runBench(target, plan({ count: 1000, depth: 4 }))).rejects.toThrow('injected read failure');
    expect(target.inFlight).toBe(0);
    expect(target.events.length).toBeLessThan(20);
  });

  it('uses the clock from the first submission to the last completion', async () => {
    let t = 1000;
    const result = await runBench(new FakeTarget(1 << 20), plan({ count: 3 }), () => (t += 250));
    expect(result.seconds).toBe(0.25);
  });
});

describe('bench output lines and numbers', () => {
  it('print what qemu-img bench prints', () => {
    expect(sendingLine(plan({ count: 75000, depth: 64 }))).toBe(
      'Sending 75000 read requests, 4096 bytes each, 64 in parallel (starting at offset 0, step size 4096)\n',
    );
    expect(sendingLine(plan({ write: true, count: 3, depth: 2, offset: 1024, step: 1536, bufferSize: 1536 }))).toBe(
      'Sending 3 write requests, 1536 bytes each, 2 in parallel (starting at offset 1024, step size 1536)\n',
    );
    expect(flushLine(64)).toBe('Sending flush every 64 requests\n');
    expect(completedLine(1.23456)).toBe('Run completed in 1.235 seconds.\n');
    expect(completedLine(0)).toBe('Run completed in 0.000 seconds.\n');
  });

  it('read integers as strtoul base 0', () => {
    expect(qemuStrtoul('0x10')).toBe(16);
    expect(qemuStrtoul('010')).toBe(8);
    expect(qemuStrtoul(' 12')).toBe(12);
    expect(qemuStrtoul('08')).toBeUndefined();
    expect(qemuStrtoul('abc')).toBeUndefined();
    expect(qemuStrtoul('-0')).toBe(0);
    expect(intOption('-1')).toBeUndefined();
    expect(intOption('2147483648')).toBeUndefined();
    expect(intOption('256', 0, 255)).toBeUndefined();
    expect(intOption('0', 1)).toBeUndefined();
  });
});
