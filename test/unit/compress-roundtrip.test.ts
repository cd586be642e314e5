/**
 * The compression layer on its own: round trips for both compression types and every cluster size,
 * the "read to the end of the last sector" input shape (trailing bytes ignored), truncated and
 * garbage input (always a Qcow2Error 'corrupt' naming the host offset), several zstd frames, the
 * bounded output, and QEMU's threshold for storing a cluster uncompressed.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compressCluster,
  compressedAdditionalSectors,
  decompressCluster,
  maxCompressedLength,
  type CompressionType,
} from '../../src/compress/index.js';
import { Qcow2Error } from '../../src/errors.js';
import type * as ZstdBinding from 'zstd-napi/binding.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding;

const TYPES: CompressionType[] = [0, 1];
const NAMES = { 0: 'deflate', 1: 'zstd' } as const;
const SMALL_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const MiB2 = 2 * 1024 * 1024;

/** Cluster contents that compress to varying degrees: runs, repeated words, small alphabets, noise. */
const segment = fc.oneof(
  fc.record({ kind: fc.constant('run' as const), byte: fc.integer({ min: 0, max: 255 }), len: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ kind: fc.constant('text' as const), seed: fc.integer(), len: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ kind: fc.constant('alphabet' as const), seed: fc.integer(), bits: fc.integer({ min: 1, max: 6 }), len: fc.integer({ min: 1, max: 3000 }) }),
  fc.record({ kind: fc.constant('noise' as const), seed: fc.integer(), len: fc.integer({ min: 1, max: 600 }) }),
);
type Segment = typeof segment extends fc.Arbitrary<infer T> ? T : never;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function fill(size: number, segments: Segment[]): Uint8Array {
  const out = new Uint8Array(size);
  if (segments.length === 0) return out;
  let pos = 0;
  for (let i = 0; pos < size; i++) {
    const s = segments[i % segments.length]!;
    const end = Math.min(size, pos + s.len);
    if (s.kind === 'run') out.fill(s.byte, pos, end);
    else {
      const r = rng(s.seed + i);
      const words = ['qcow2 ', 'cluster ', 'the ', 'refcount ', 'L2 ', 'zstd ', 'deflate ', '\n'];
      for (let p = pos; p < end; ) {
        if (s.kind === 'noise') out[p++] = r() & 0xff;
        else if (s.kind === 'alphabet') out[p++] = 0x41 + (r() & ((1 << s.bits) - 1));
        else {
          const w = words[r() % words.length]!;
          for (let k = 0; k < w.length && p < end; k++) out[p++] = w.charCodeAt(k);
        }
      }
    }
    pos = end;
  }
  return out;
}

const clusterArb = (sizes: number[]) =>
  fc.record({
    type: fc.constantFrom<CompressionType>(0, 1),
    size: fc.constantFrom(...sizes),
    segments: fc.array(segment, { minLength: 0, maxLength: 8 }),
    hostOffset: fc.integer({ min: 0, max: 2 ** 48 }),
  });

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectCorrupt(fn: () => unknown, hostOffset: number): Qcow2Error {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(Qcow2Error);
  const q = err as Qcow2Error;
  expect(q.code).toBe('corrupt');
  expect(q.offset).toBe(hostOffset);
  return q;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r() & 0xff;
  return out;
}

function zstdFrame(data: Uint8Array, params: Partial<Record<keyof typeof zstd.CParameter, number>> = {}): Uint8Array {
  const c = new zstd.CCtx();
  for (const [k, v] of Object.entries(params)) c.setParameter(zstd.CParameter[k as keyof typeof zstd.CParameter], v);
  const out = new Uint8Array(zstd.compressBound(data.byteLength) + 64);
  const [rest, produced] = c.compressStream2(out, data, zstd.EndDirective.end);
  expect(rest).toBe(0);
  return out.slice(0, produced);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}

/** Text-like cluster contents that always compress well. */
function textCluster(size: number, seed = 1): Uint8Array {
  return fill(size, [{ kind: 'text', seed, len: size }]);
}

describe('round trips', () => {
  it('compressCluster then decompressCluster gives the cluster back (512 B .. 64 KiB)', () => {
    fc.assert(
      fc.property(clusterArb(SMALL_SIZES), ({ type, size, segments, hostOffset }) => {
        const data = fill(size, segments);
        const packed = compressCluster(type, data);
        if (packed === undefined) return;
        expect(packed.byteLength).toBeLessThanOrEqual(maxCompressedLength(type, size));
        const back = decompressCluster(type, packed, size, hostOffset);
        expect(back.byteLength).toBe(size);
        expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('and for 2 MiB clusters (a few cases)', () => {
    fc.assert(
      fc.property(clusterArb([MiB2]), ({ type, segments, hostOffset }) => {
        const data = fill(MiB2, segments);
        const packed = compressCluster(type, data);
        if (packed === undefined) return;
        const back = decompressCluster(type, packed, MiB2, hostOffset);
        expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 6 },
    );
    for (const type of TYPES) {
      const data = textCluster(MiB2, 7);
      const packed = compressCluster(type, data)!;
      expect(packed).toBeDefined();
      expect(Buffer.from(decompressCluster(type, packed, MiB2, 0)).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('text compresses and all-zero clusters compress to a few bytes', () => {
    for (const type of TYPES) {
      for (const size of [512, 4096, 65536]) {
        expect(compressCluster(type, textCluster(size))!.byteLength).toBeLessThan(size / 2);
        expect(compressCluster(type, new Uint8Array(size))!.byteLength).toBeLessThan(128);
      }
    }
  });

  it('returns plain Uint8Arrays that own their bytes', () => {
    for (const type of TYPES) {
      for (const size of [512, 65536]) {
        const packed = compressCluster(type, textCluster(size))!;
        expect(Object.getPrototypeOf(packed)).toBe(Uint8Array.prototype);
        expect(packed.byteOffset).toBe(0);
        expect(packed.buffer.byteLength).toBe(packed.byteLength);
        const back = decompressCluster(type, packed, size, 0);
        expect(Object.getPrototypeOf(back)).toBe(Uint8Array.prototype);
        expect(back.byteOffset).toBe(0);
        expect(back.buffer.byteLength).toBe(size);
      }
    }
  });
});

describe('input shaped like a compressed cluster span', () => {
  it('ignores whatever follows the stream (the rest of the sector, the next cluster)', () => {
    fc.assert(
      fc.property(
        clusterArb(SMALL_SIZES),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer(),
        ({ type, size, segments, hostOffset }, extra, seed) => {
          const data = fill(size, segments);
          const packed = compressCluster(type, data);
          if (packed === undefined) return;
          for (const tail of [randomBytes(extra, seed), new Uint8Array(extra), new Uint8Array(extra).fill(0xff)]) {
            const back = decompressCluster(type, concat(packed, tail), size, hostOffset);
            expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('decodes clusters packed back to back, each read from its offset to the end of its last sector', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<CompressionType>(0, 1),
        fc.constantFrom(512, 4096, 65536),
        fc.array(fc.array(segment, { maxLength: 5 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 0, max: 511 }),
        (type, size, contents, start) => {
          const clusters = contents.map((segs) => fill(size, segs));
          const packed = clusters.map((c) => compressCluster(type, c) ?? compressCluster(type, new Uint8Array(size))!);
          const expected = clusters.map((c, i) => (compressCluster(type, c) ? c : new Uint8Array(size)));
          // A host area holding the streams byte after byte from an unaligned start, like QEMU's packing.
          const host = concat(randomBytes(start, 3), ...packed, randomBytes(1024, 4));
          let off = start;
          packed.forEach((p, i) => {
            const sectors = compressedAdditionalSectors(off, p.byteLength);
            const spanEnd = (Math.floor(off / 512) + sectors + 1) * 512;
            expect(spanEnd).toBeGreaterThanOrEqual(off + p.byteLength);
            expect(spanEnd - (off + p.byteLength)).toBeLessThan(512);
            const back = decompressCluster(type, host.subarray(off, spanEnd), size, off);
            expect(Buffer.from(back).equals(Buffer.from(expected[i]!))).toBe(true);
            off += p.byteLength;
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('damaged input is corrupt, with the host offset', () => {
  it('a truncated stream never decodes to wrong data: corrupt, or (deflate cut in its final bits) the cluster', () => {
    fc.assert(
      fc.property(clusterArb(SMALL_SIZES), fc.double({ min: 0, max: 1, noNaN: true }), ({ type, size, segments, hostOffset }, f) => {
        const data = fill(size, segments);
        const packed = compressCluster(type, data);
        if (packed === undefined) return;
        const cut = Math.min(packed.byteLength - 1, Math.floor(f * packed.byteLength));
        const err = catchError(() => {
          const back = decompressCluster(type, packed.subarray(0, cut), size, hostOffset);
          // Only a deflate stream that already produced the whole cluster may lose its last bits.
          expect(type).toBe(0);
          expect(cut).toBeGreaterThanOrEqual(packed.byteLength - 2);
          expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
        });
        if (err !== undefined) {
          expect(err).toBeInstanceOf(Qcow2Error);
          expect((err as Qcow2Error).code).toBe('corrupt');
          expect((err as Qcow2Error).offset).toBe(hostOffset);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('half a stream is corrupt', () => {
    for (const type of TYPES) {
      for (const size of [512, 4096, 65536]) {
        const packed = compressCluster(type, textCluster(size))!;
        const q = expectCorrupt(() => decompressCluster(type, packed.subarray(0, packed.byteLength >> 1), size, 0x12345), 0x12345);
        expect(q.describe()).toContain('0x12345');
        expect(q.message).toMatch(type === 0 ? /deflate/ : /zstd/);
      }
    }
  });

  it('empty, all-zero and all-ones input is corrupt', () => {
    for (const type of TYPES) {
      for (const input of [new Uint8Array(0), new Uint8Array(512), new Uint8Array(4096).fill(0xff)]) {
        expectCorrupt(() => decompressCluster(type, input, 4096, 77), 77);
      }
    }
  });

  it('garbage never escapes as a raw zlib/zstd error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<CompressionType>(0, 1),
        fc.constantFrom(512, 4096, 65536),
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.boolean(),
        (type, size, bytes, withMagic) => {
          // Half the cases start like a real zstd frame so the decoder gets past the magic number.
          const input = withMagic ? concat(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd), bytes) : bytes;
          const err = catchError(() => expect(decompressCluster(type, input, size, 4242).byteLength).toBe(size));
          if (err !== undefined) {
            expect(err).toBeInstanceOf(Qcow2Error);
            expect((err as Qcow2Error).code).toBe('corrupt');
            expect((err as Qcow2Error).offset).toBe(4242);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('flipped bytes in a valid stream: corrupt or a full cluster, never an escape', () => {
    fc.assert(
      fc.property(clusterArb([512, 4096, 65536]), fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), ({ type, size, segments }, flips) => {
        const packed = compressCluster(type, fill(size, segments));
        if (packed === undefined) return;
        const bad = packed.slice();
        for (const f of flips) bad[f % bad.byteLength]! ^= 1 << (f % 8);
        const err = catchError(() => expect(decompressCluster(type, bad, size, 9).byteLength).toBe(size));
        if (err !== undefined) {
          expect(err).toBeInstanceOf(Qcow2Error);
          expect((err as Qcow2Error).code).toBe('corrupt');
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('zstd frames', () => {
  it('several frames that together make a cluster decode (frames may split anywhere)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096, 65536),
        fc.array(segment, { maxLength: 6 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }),
        (size, segments, cuts) => {
          const data = fill(size, segments);
          const points = [...new Set(cuts.map((c) => Math.floor(c * size)))].sort((a, b) => a - b);
          const bounds = [0, ...points, size];
          const frames = bounds.slice(1).map((end, i) => zstdFrame(data.subarray(bounds[i]!, end)));
          const back = decompressCluster(1, concat(...frames, randomBytes(300, 5)), size, 0);
          expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('two frames of half a cluster each', () => {
    const data = textCluster(65536, 3);
    const input = concat(zstdFrame(data.subarray(0, 32768)), zstdFrame(data.subarray(32768)));
    expect(Buffer.from(decompressCluster(1, input, 65536, 0)).equals(Buffer.from(data))).toBe(true);
  });

  it('frames with a checksum, without the content size, and skippable frames decode', () => {
    const data = textCluster(4096, 4);
    const skippable = new Uint8Array(8 + 5);
    new DataView(skippable.buffer).setUint32(0, 0x184d2a50, true);
    new DataView(skippable.buffer).setUint32(4, 5, true);
    for (const input of [
      zstdFrame(data, { checksumFlag: 1 }),
      zstdFrame(data, { contentSizeFlag: 0 }),
      zstdFrame(data, { compressionLevel: 19 }),
      concat(skippable, zstdFrame(data)),
    ]) {
      expect(Buffer.from(decompressCluster(1, input, 4096, 0)).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('a bad checksum is corrupt', () => {
    const data = textCluster(4096, 4);
    const framed = zstdFrame(data, { checksumFlag: 1 });
    framed[framed.byteLength - 1]! ^= 0xff;
    expectCorrupt(() => decompressCluster(1, framed, 4096, 1), 1);
  });

  it('a frame that runs past the cluster is corrupt (as in QEMU); a frame that ends short is corrupt', () => {
    const data = textCluster(8192, 5);
    expectCorrupt(() => decompressCluster(1, zstdFrame(data), 4096, 2), 2);
    expectCorrupt(() => decompressCluster(1, concat(zstdFrame(data.subarray(0, 3000)), zstdFrame(data.subarray(3000))), 4096, 2), 2);
    expectCorrupt(() => decompressCluster(1, zstdFrame(data.subarray(0, 4095)), 4096, 3), 3);
    // ... but the next cluster's frame after a complete one is just trailing data.
    const next = zstdFrame(data.subarray(4096));
    expect(Buffer.from(decompressCluster(1, concat(zstdFrame(data.subarray(0, 4096)), next), 4096, 0)).equals(Buffer.from(data.subarray(0, 4096)))).toBe(true);
  });
});

describe('deflate streams', () => {
  it('back-references reaching beyond 4 KiB inside the cluster decode (QEMU inflates a cluster in one call)', () => {
    const size = 65536;
    const data = new Uint8Array(size);
    const noise = randomBytes(2000, 9);
    data.set(noise, 0);
    data.set(noise, 40000);
    data.set(noise, 63000);
    const wide = zlib.deflateRawSync(data, { windowBits: 15 });
    expect(Buffer.from(decompressCluster(0, wide, size, 0)).equals(Buffer.from(data))).toBe(true);
  });

  it('a stream that goes on past the cluster is corrupt (QEMU would return its first cluster)', () => {
    const data = textCluster(8192, 6);
    const q = expectCorrupt(() => decompressCluster(0, zlib.deflateRawSync(data, { windowBits: 12 }), 4096, 5), 5);
    expect(q.message).toMatch(/past the end/);
  });

  it('a stream that ends early is corrupt', () => {
    const data = textCluster(4096, 6);
    expectCorrupt(() => decompressCluster(0, zlib.deflateRawSync(data.subarray(0, 4095)), 4096, 5), 5);
    expectCorrupt(() => decompressCluster(0, zlib.deflateRawSync(new Uint8Array(0)), 4096, 5), 5);
  });

  it('a zlib-wrapped (not raw) stream is corrupt', () => {
    expectCorrupt(() => decompressCluster(0, zlib.deflateSync(textCluster(4096)), 4096, 6), 6);
  });

  it('a decompression bomb stops at one cluster', () => {
    const bomb = zlib.deflateRawSync(new Uint8Array(64 * 1024 * 1024));
    const t0 = performance.now();
    expectCorrupt(() => decompressCluster(0, bomb, 65536, 7), 7);
    expect(performance.now() - t0).toBeLessThan(1000);
    const zbomb = zstdFrame(new Uint8Array(64 * 1024 * 1024));
    expectCorrupt(() => decompressCluster(1, zbomb, 65536, 8), 8);
  });
});

describe("QEMU's rule for storing a cluster uncompressed", () => {
  it('random clusters are not worth compressing', () => {
    for (const type of TYPES) {
      for (const size of [512, 4096, 65536]) expect(compressCluster(type, randomBytes(size, size + type))).toBeUndefined();
    }
  });

  it('deflate: compressed when at most cluster_size - 2 bytes; zstd: at most cluster_size - 1', () => {
    expect(maxCompressedLength(0, 4096)).toBe(4094);
    expect(maxCompressedLength(1, 4096)).toBe(4095);
    // Find 512-byte clusters whose compressed size straddles each limit (noise with a run of zeros).
    // zstd never lands on 512 here: a block is stored raw unless compressing saves enough.
    for (const type of TYPES) {
      const limit = maxCompressedLength(type, 512);
      const seen = new Map<number, boolean>();
      for (let seed = 1; seed < 50 && !(seen.has(limit) && seen.has(limit + 1)); seed++) {
        const noise = randomBytes(512, seed);
        for (let zeros = 0; zeros < 80; zeros++) {
          for (const shift of [0, 17, 40]) {
            const data = noise.slice();
            data.fill(0, 512 - zeros - shift, 512 - shift);
            const len = rawLength(type, data);
            if (len === limit || len === limit + 1) seen.set(len, compressCluster(type, data) !== undefined);
          }
        }
      }
      expect([NAMES[type], seen.get(limit)]).toEqual([NAMES[type], true]);
      if (type === 0) expect(seen.has(limit + 1)).toBe(true);
      if (seen.has(limit + 1)) expect(seen.get(limit + 1)).toBe(false);
    }
  });

  function rawLength(type: CompressionType, data: Uint8Array): number {
    if (type === 0) return zlib.deflateRawSync(data, { level: 6, windowBits: 12, memLevel: 9 }).byteLength;
    const out = new Uint8Array(zstd.compressBound(data.byteLength));
    return zstd.compress(out, data, 3);
  }
});

describe('arguments', () => {
  it('rejects impossible cluster sizes and unknown compression types', () => {
    for (const size of [0, 256, 1000, 4097, 4 * 1024 * 1024]) {
      const err = catchError(() => decompressCluster(0, new Uint8Array(10), size, 0));
      expect((err as Qcow2Error).code).toBe('usage');
      expect((catchError(() => compressCluster(1, new Uint8Array(size))) as Qcow2Error).code).toBe('usage');
    }
    expect((catchError(() => decompressCluster(2 as CompressionType, new Uint8Array(10), 4096, 0)) as Qcow2Error).code).toBe('unsupported');
  });

  it('compressedAdditionalSectors counts the sectors touched, less one', () => {
    expect(compressedAdditionalSectors(0, 1)).toBe(0);
    expect(compressedAdditionalSectors(0, 512)).toBe(0);
    expect(compressedAdditionalSectors(0, 513)).toBe(1);
    expect(compressedAdditionalSectors(511, 1)).toBe(0);
    expect(compressedAdditionalSectors(511, 2)).toBe(1);
    expect(compressedAdditionalSectors(24576 + 3523, 1175)).toBe(3);
    expect((catchError(() => compressedAdditionalSectors(0, 0)) as Qcow2Error).code).toBe('usage');
  });
});
