/** The crash-state enumeration and the recording file, against hand-worked logs. */
import { describe, expect, it } from 'vitest';
import { crashStates, durableAt, epochsOf, materialize } from '../../src/verification/crash/states.js';
import { firstDifference } from '../../src/verification/crash/judge.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { RecordingFile, type FileOp } from '../../src/io/recording-file.js';
import { FaultFile } from '../../src/io/fault-file.js';
import { BarrierFile } from '../../src/io/barrier-file.js';

const w = (offset: number, fill: number, length = 1): FileOp => ({ kind: 'write', offset, data: new Uint8Array(length).fill(fill), tag: 'data' });
const flush: FileOp = { kind: 'flush', inFlight: [] };

describe('crash states', () => {
  it('cuts the log into epochs at completed flushes', () => {
    const log = [w(0, 1), w(1, 2), flush, w(2, 3), flush, w(3, 4)];
    expect(epochsOf(log).map((e) => e.pending)).toEqual([[0, 1], [3], [5]]);
  });

  it('gives every subset of a small epoch, not only prefixes', () => {
    const log = [flush, w(0, 1), w(1, 2), w(2, 3)];
    const states = [...crashStates(log, { torn: 0 })].filter((s) => s.epoch === 1).map((s) => s.landed.join(','));
    // 2^3 subsets of writes 1, 2, 3.
    expect(new Set(states)).toEqual(new Set(['', '1', '2', '1,2', '3', '1,3', '2,3', '1,2,3']));
  });

  it('keeps writes in flight at a flush pending after it', () => {
    const log: FileOp[] = [w(0, 1), w(1, 2), { kind: 'flush', inFlight: [1] }, w(2, 3)];
    expect(epochsOf(log)[1]!.pending).toEqual([1, 3]);
    const durable = durableAt(new Uint8Array(4), log, epochsOf(log)[1]!);
    expect([...durable]).toEqual([1, 0, 0, 0]);
  });

  it('keeps an image and its data file apart: a flush covers only its own file', () => {
    const d = (offset: number, fill: number): FileOp => ({ ...w(offset, fill), file: 'data-file' });
    const log: FileOp[] = [w(0, 1), d(0, 2), { kind: 'flush', inFlight: [] }, w(1, 3), { kind: 'flush', inFlight: [], file: 'data-file' }, w(2, 4)];
    // Before the image flush: both pending; before the data flush: the data write and the second
    // image write; at the end: only the last image write.
    expect(epochsOf(log).map((e) => e.pending)).toEqual([[0, 1], [1, 3], [3, 5]]);
    const end = epochsOf(log)[2]!;
    expect([...durableAt(new Uint8Array(3), log, end)]).toEqual([1, 0, 0]);
    expect([...durableAt(new Uint8Array(1), log, end, 'data-file')]).toEqual([2]);
    expect([...materialize(new Uint8Array([1, 0, 0]), log, { epoch: 2, end: 6, landed: [3, 5] })]).toEqual([1, 3, 4]);
  });

  it('applies landed writes in log order over the durable bytes', () => {
    const log = [w(0, 1, 4), flush, w(2, 7, 2), w(3, 9, 3)];
    const durable = durableAt(new Uint8Array(0), log, epochsOf(log)[1]!);
    expect([...durable]).toEqual([1, 1, 1, 1]);
    expect([...materialize(durable, log, { epoch: 1, end: 4, landed: [2, 3] })]).toEqual([1, 1, 7, 9, 9, 9]);
    expect([...materialize(durable, log, { epoch: 1, end: 4, landed: [3] })]).toEqual([1, 1, 1, 9, 9, 9]);
  });

  it('tears a write at sector boundaries', () => {
    // A write of 1024 bytes at 256 touches sectors 0, 1 and 2 (256-511, 512-1023, 1024-1279).
    const log: FileOp[] = [flush, { kind: 'write', offset: 256, data: new Uint8Array(1024).fill(5), tag: 'l2' }];
    const durable = new Uint8Array(2048);
    const bytes = materialize(durable, log, { epoch: 1, end: 2, landed: [], torn: { index: 1, sectors: [false, true, false] } });
    expect(bytes.subarray(256, 512).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(512, 1024).every((b) => b === 5)).toBe(true);
    expect(bytes.subarray(1024, 1280).every((b) => b === 0)).toBe(true);
    const torn = [...crashStates(log, { torn: 4 })].filter((s) => s.torn);
    expect(torn.length).toBe(2);
    expect(torn[0]!.torn!.sectors).toEqual([true, true, false]);
  });

  it('samples large epochs: all prefixes, singles and leave-one-outs at least', () => {
    const log = [flush, ...Array.from({ length: 12 }, (_, i) => w(i, i + 1))];
    const states = [...crashStates(log, { exhaustiveUpTo: 8, samples: 10, torn: 0 })].filter((s) => s.epoch === 1);
    expect(states.length).toBe(13 + 12 + 12 + 10);
    expect(states.some((s) => s.landed.join(',') === '1,2,3,4,5,6,7,8,9,10,11')).toBe(true);
  });

  it('reads past unsettled ranges only', () => {
    const e = { bytes: new Uint8Array([1, 2, 3, 4, 5]), unsettled: [[1, 3]] as [number, number][] };
    expect(firstDifference(new Uint8Array([1, 9, 9, 4, 5]), e)).toBe(-1);
    expect(firstDifference(new Uint8Array([1, 9, 9, 4, 6]), e)).toBe(4);
  });
});

describe('recording, fault and barrier files', () => {
  it('logs writes when issued and flushes when complete', async () => {
    const rec = new RecordingFile(new MemoryFile());
    await rec.write(0, new Uint8Array([1]), 'header');
    await rec.flush();
    await rec.truncate(10);
    expect(rec.log.map((o) => o.kind)).toEqual(['write', 'flush', 'truncate']);
  });

  it('fails the n-th write of a tag with a typed io error, once or from then on', async () => {
    const once = new FaultFile(new MemoryFile(), { on: 'l2', nth: 2, code: 'ENOSPC' });
    await once.write(0, new Uint8Array(1), 'l2');
    await once.write(0, new Uint8Array(1), 'data');
    await expect(once.write(0, new Uint8Array(1), 'l2')).rejects.toMatchObject({ code: 'io', message: expect.stringContaining('ENOSPC') });
    await once.write(0, new Uint8Array(1), 'l2');
    const sticky = new FaultFile(new MemoryFile(), { on: 'flush', nth: 1, code: 'EIO', sticky: true });
    await expect(sticky.flush()).rejects.toMatchObject({ code: 'io' });
    await expect(sticky.flush()).rejects.toMatchObject({ code: 'io' });
    expect(sticky.failures).toBe(2);
  });

  it('a barrier flushes only when another kind of write completed since the last flush', async () => {
    const rec = new RecordingFile(new MemoryFile());
    const b = new BarrierFile(rec);
    await b.barrier();
    await b.write(0, new Uint8Array(1), 'l2');
    await b.barrier('l2');
    expect(rec.log.filter((o) => o.kind === 'flush').length).toBe(0);
    await b.write(0, new Uint8Array(1), 'data');
    await b.barrier('l2');
    await b.barrier('l2');
    expect(rec.log.filter((o) => o.kind === 'flush').length).toBe(1);
  });
});
