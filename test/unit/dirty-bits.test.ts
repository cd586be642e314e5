/**
 * The bit arithmetic of kept bitmaps (src/qcow2/dirty-bitmaps.ts), against hand calculation: bit i
 * of byte j is granule 8j + i (spec: "Bitmap data").
 */
import { describe, expect, it } from 'vitest';
import { bitmapBytes, markDirty, resizeBitmaps, setBits } from '../../src/qcow2/dirty-bitmaps.js';
import type { TrackedBitmaps } from '../../src/qcow2/state.js';
import { BITMAP_FLAG_AUTO } from '../../src/format/constants.js';

const bytesOf = (bits: Uint8Array) => [...bits].map((b) => b.toString(2).padStart(8, '0')).join(' ');

describe('setBits', () => {
  it('sets bits least significant first, across byte boundaries, whole bytes at once', () => {
    const bits = new Uint8Array(4);
    setBits(bits, 3, 3);
    expect(bytesOf(bits)).toBe('00001000 00000000 00000000 00000000');
    setBits(bits, 6, 17);
    expect(bytesOf(bits)).toBe('11001000 11111111 00000011 00000000');
    setBits(bits, 24, 31);
    expect(bytesOf(bits)).toBe('11001000 11111111 00000011 11111111');
  });
});

describe('bitmapBytes', () => {
  it('one bit per granule, the last granule partial, rounded up to bytes', () => {
    expect(bitmapBytes(64 * 2 ** 20, 16)).toBe(128); // 1024 granules
    expect(bitmapBytes(64 * 2 ** 20 + 1, 16)).toBe(129); // 1025 granules
    expect(bitmapBytes(8 * 2 ** 20, 9)).toBe(2048); // 16384 granules
    expect(bitmapBytes(0, 9)).toBe(0);
  });
});

function tracked(flags: number, granularityBits: number, bytes: number): TrackedBitmaps {
  const entry = { bitmapTableOffset: 0n, bitmapTableSize: 1, flags, type: 1, granularityBits, name: 'b', extraData: new Uint8Array(0) };
  return { list: [{ entry, bits: new Uint8Array(bytes), changed: false, owned: [] }], inUse: true, listChanged: false, removed: [] };
}

describe('markDirty', () => {
  it('marks every granule a request touches, in enabled bitmaps only', () => {
    const on = tracked(BITMAP_FLAG_AUTO, 16, 4);
    // 64 KiB granules: bytes 65535..131072 touch granules 0, 1 and 2.
    markDirty(on, 65535, 65538);
    expect(bytesOf(on.list[0]!.bits!)).toBe('00000111 00000000 00000000 00000000');
    expect(on.list[0]!.changed).toBe(true);
    const off = tracked(0, 16, 4);
    markDirty(off, 0, 2 ** 20);
    expect(bytesOf(off.list[0]!.bits!)).toBe('00000000 00000000 00000000 00000000');
    expect(off.list[0]!.changed).toBe(false);
  });
});

describe('resizeBitmaps', () => {
  it('grows with clean granules and shrinks dropping the cut ones, padding bits clear', () => {
    const t = tracked(BITMAP_FLAG_AUTO, 9, 2);
    t.list[0]!.bits!.fill(0xff);
    resizeBitmaps(t, 20 * 512);
    expect(bytesOf(t.list[0]!.bits!)).toBe('11111111 11111111 00000000');
    resizeBitmaps(t, 11 * 512);
    expect(bytesOf(t.list[0]!.bits!)).toBe('11111111 00000111');
  });
});
