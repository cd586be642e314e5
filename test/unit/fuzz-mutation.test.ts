// The fuzzer's plain parts: mutations applied to bytes and described, the shrinker, the seeded
// choice of mutations (a seed gives the same list), and `qcow2 fuzz`'s command line.
import { describe, expect, it } from 'vitest';
import { parseDuration, parseFuzzArgs } from '../../src/cli/fuzz.js';
import { applyMutations, describeMutation, getBits, type Mutation, setBits } from '../../src/verification/fuzz/mutation.js';
import { randomMutations } from '../../src/verification/fuzz/mutate.js';
import { shrink } from '../../src/verification/fuzz/shrink.js';
import { finding } from '../../src/verification/fuzz/oracle.js';
import { mulberry32 } from '../../src/verification/prng.js';
import { locate } from '../../src/verification/fuzz/locate.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { tinyImage } from '../support/tiny-image.js';

describe('mutations', () => {
  it('sets bit fields of big-endian words without touching the other bits', () => {
    const b = new Uint8Array(8).fill(0xff);
    setBits(b, 0, 8, 9, 47, 0n);
    expect([...b]).toEqual([0xff, 0, 0, 0, 0, 0, 0x01, 0xff]);
    setBits(b, 0, 8, 9, 47, 0x123456789n);
    expect(getBits(b, 0, 8, 9, 47)).toBe(0x123456789n);
    expect(getBits(b, 0, 8, 56, 8)).toBe(0xffn);
    expect(getBits(b, 0, 8, 0, 9)).toBe(0x1ffn);
  });

  it('applies in order, grows for a field past the end, truncates, copies, flips; the seed is untouched', () => {
    const seed = Uint8Array.from({ length: 16 }, (_, i) => i);
    const list: Mutation[] = [
      { op: 'set', field: 'x', at: 16, size: 4, shift: 0, width: 32, value: '0xdeadbeef' },
      { op: 'flip', at: 0, bit: 7 },
      { op: 'splice', field: 'y', at: 8, from: 0, length: 2 },
      { op: 'bytes', field: 'z', at: 2, hex: 'aabb' },
      { op: 'truncate', length: 18 },
    ];
    const out = applyMutations(seed, list);
    expect([...out]).toEqual([0x80, 1, 0xaa, 0xbb, 4, 5, 6, 7, 0x80, 1, 10, 11, 12, 13, 14, 15, 0xde, 0xad]);
    expect(seed[0]).toBe(0);
    expect(describeMutation(list[0]!)).toBe('x @0x10 = 0xdeadbeef');
    expect(describeMutation({ op: 'set', field: 'l2_entry.offset', at: 0x50008, size: 8, shift: 9, width: 47, value: '0x1', why: 'one' })).toBe(
      'l2_entry.offset @0x50008 [bits 9..55 of 64] = 0x1 (one)',
    );
  });

  it('the same seed gives the same mutations', async () => {
    const bytes = tinyImage();
    const map = await locate(bytes);
    const a = randomMutations(mulberry32(5), { name: 's', bytes, map });
    const b = randomMutations(mulberry32(5), { name: 's', bytes, map });
    expect(a.length).toBeGreaterThan(0);
    expect(a).toEqual(b);
    expect(new MemoryFile(applyMutations(bytes, a)).readOnly).toBe(false);
  });
});

describe('shrink', () => {
  it('keeps only the mutations the failure needs, in order', async () => {
    const ms: Mutation[] = [0, 1, 2, 3].map((at) => ({ op: 'flip', at, bit: 0 }));
    const needs = (list: Mutation[]) => Promise.resolve(list.some((m) => m.op === 'flip' && m.at === 1) && list.some((m) => m.op === 'flip' && m.at === 3));
    expect(await shrink(ms, needs)).toEqual([ms[1], ms[3]]);
  });
});

describe('findings', () => {
  it('have a signature without numbers, so one bug at other offsets is one finding', () => {
    expect(finding('read', 'untyped-error', 'RangeError: offset 0x1000 is 4096').signature).toBe(
      finding('read', 'untyped-error', 'RangeError: offset 0x2000 is 8192').signature,
    );
  });
});

describe('qcow2 fuzz command line', () => {
  it('parses the options', () => {
    expect(parseFuzzArgs(['--seed', '3', '--time', '2m', '--target', 'open,read', '--target', 'map', '--qemu', '5', '--out', 'x'])).toEqual({
      seed: 3,
      timeMs: 120_000,
      targets: ['open', 'read', 'map'],
      qemu: 5,
      out: 'x',
    });
    expect(parseFuzzArgs(['--seed', '1'])).toMatchObject({ runs: 500, qemu: 0, targets: [] });
    expect(parseDuration('1500ms')).toBe(1500);
    expect(() => parseFuzzArgs(['--runs', '3', '--time', '1s'])).toThrow(/exclude/);
    expect(() => parseFuzzArgs(['--runs=-3'])).toThrow(/whole number/);
  });
});
