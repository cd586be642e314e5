/**
 * Every hand-written codec round-trips: decode(encode(value)) equals the value for generated values,
 * and for the fixed-width entries every bit pattern survives decode then encode.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as bitmap from '../../src/format/bitmap.js';
import { view } from '../../src/format/bytes.js';
import * as compressed from '../../src/format/compressed.js';
import { decodeExtensions, encodeExtensions } from '../../src/format/extensions.js';
import { decodeHeader, encodeHeader } from '../../src/format/header.js';
import * as l1 from '../../src/format/l1.js';
import * as l2 from '../../src/format/l2.js';
import { decodeLuksHeader, encodeLuksHeader } from '../../src/format/luks.js';
import * as refcount from '../../src/format/refcount.js';
import { decodeSnapshotTable, encodeSnapshotTable } from '../../src/format/snapshot.js';
import { bitmapEntryArb, entryOffset, extensionArb, headerArb, luksArb, snapshotArb, u8 } from '../support/arbitraries.js';

const RUNS = { numRuns: 300 };

/** decode then encode leaves every byte of a table as it was. */
function bytesSurvive(size: number, roundTrip: (bytes: Uint8Array) => Uint8Array) {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: size, maxLength: size * 8 }).map((b) => b.slice(0, b.byteLength - (b.byteLength % size))), (bytes) => {
      expect(roundTrip(bytes)).toEqual(bytes);
    }),
    RUNS,
  );
}

describe('header', () => {
  it('round-trips v2 and v3 headers, unknown tail bytes included', () => {
    fc.assert(
      fc.property(headerArb, (h) => {
        expect(decodeHeader(encodeHeader(h))).toEqual(h);
      }),
      RUNS,
    );
  });
});

describe('header extensions', () => {
  it('round-trips any list of extensions', () => {
    fc.assert(
      fc.property(fc.array(extensionArb, { maxLength: 6 }), (exts) => {
        const bytes = encodeExtensions(exts);
        const decoded = decodeExtensions(bytes, 0, bytes.byteLength);
        expect(decoded.extensions).toEqual(exts);
        expect(decoded.end).toBe(bytes.byteLength);
      }),
      RUNS,
    );
  });
});

describe('L1 entries', () => {
  it('keeps every bit of every entry', () => bytesSurvive(8, (b) => l1.encodeL1Table(l1.decodeL1Table(b, b.byteLength / 8))));
  it('round-trips decoded entries', () => {
    const entry = fc.record({ l2Offset: entryOffset, copied: fc.boolean(), reservedLow: fc.integer({ min: 0, max: 511 }), reservedHigh: fc.integer({ min: 0, max: 127 }) });
    fc.assert(fc.property(fc.array(entry), (es) => {
      expect(l1.decodeL1Table(l1.encodeL1Table(es), es.length)).toEqual(es);
    }), RUNS);
  });
});

describe('L2 entries', () => {
  it('keeps every bit of standard entries', () => bytesSurvive(8, (b) => l2.encodeL2Table(l2.decodeL2Table(b, b.byteLength / 8, false), false)));
  it('keeps every bit of extended entries', () => bytesSurvive(16, (b) => l2.encodeL2Table(l2.decodeL2Table(b, b.byteLength / 16, true), true)));
  it('round-trips standard descriptors', () => {
    const desc = fc.record({
      zero: fc.boolean(),
      hostOffset: entryOffset,
      reservedLow: u8,
      reservedHigh: fc.integer({ min: 0, max: 63 }),
    });
    fc.assert(fc.property(desc, (d) => {
      expect(l2.decodeStandardDescriptor(l2.encodeStandardDescriptor(d))).toEqual(d);
    }), RUNS);
  });
  it('keeps every bit of a descriptor read as standard', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3fff_ffff }), fc.integer({ min: 0, max: 0xffff_ffff }), (hi, lo) => {
        expect(l2.encodeStandardDescriptor(l2.decodeStandardDescriptor({ descriptorHi: hi, descriptorLo: lo }))).toEqual({ descriptorHi: hi, descriptorLo: lo });
      }),
      RUNS,
    );
  });
});

describe('compressed descriptors', () => {
  it('keeps every bit of a descriptor for every cluster size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.integer({ min: 0, max: 0x3fff_ffff }), fc.integer({ min: 0, max: 0xffff_ffff }), (bits, hi, lo) => {
        const d = compressed.decodeCompressedDescriptor({ descriptorHi: hi, descriptorLo: lo }, bits);
        expect(compressed.encodeCompressedDescriptor(d, bits)).toEqual({ descriptorHi: hi, descriptorLo: lo });
      }),
      RUNS,
    );
  });
  it('round-trips offsets and sector counts within the field widths', () => {
    const arb = fc.integer({ min: 9, max: 21 }).chain((bits) => {
      const x = compressed.compressedOffsetBits(bits);
      return fc.record({
        bits: fc.constant(bits),
        hostOffset: fc.bigInt({ min: 0n, max: (1n << BigInt(Math.min(x, 53))) - 1n }).map(Number),
        offsetHighBits: fc.integer({ min: 0, max: x > 53 ? 2 ** (x - 53) - 1 : 0 }),
        additionalSectors: fc.integer({ min: 0, max: 2 ** (62 - x) - 1 }),
      });
    });
    fc.assert(
      fc.property(arb, ({ bits, ...c }) => {
        expect(compressed.decodeCompressedDescriptor(compressed.encodeCompressedDescriptor(c, bits), bits)).toEqual(c);
      }),
      RUNS,
    );
  });
});

describe('refcount structures', () => {
  it('keeps every bit of refcount table entries', () =>
    bytesSurvive(8, (b) => refcount.encodeRefcountTable(refcount.decodeRefcountTable(b, b.byteLength / 8))));
  it('keeps every bit of refcount blocks of every order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (order, block) => {
        const count = (block.byteLength * 8) >> order;
        const values = refcount.decodeRefcountBlock(block, order, count);
        expect(values.every((v) => v <= refcount.maxRefcount(order))).toBe(true);
        expect(refcount.encodeRefcountBlock(values, order, block.byteLength)).toEqual(block);
      }),
      RUNS,
    );
  });
  it('writes one refcount without touching its neighbours', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), fc.nat(), (order, block, i, v) => {
        const count = (block.byteLength * 8) >> order;
        const index = i % count;
        const value = v % Number(refcount.maxRefcount(order) + 1n);
        const before = refcount.decodeRefcountBlock(block, order, count);
        const after = block.slice();
        refcount.writeRefcount(after, index, order, value);
        expect(refcount.readRefcount(after, index, order)).toBe(value);
        const expected = before.slice();
        expected[index] = BigInt(value);
        expect(refcount.decodeRefcountBlock(after, order, count)).toEqual(expected);
      }),
      RUNS,
    );
  });
  it('refuses to read a 64-bit refcount above 2^53 - 1 as a number', () => {
    const block = new Uint8Array(16);
    view(block).setBigUint64(8, (1n << 53n) + 1n);
    expect(refcount.readRefcountBig(block, 1, 6)).toBe((1n << 53n) + 1n);
    expect(() => refcount.readRefcount(block, 1, 6)).toThrow(/exceeds 2\^53/);
  });
});

describe('snapshot table', () => {
  it('round-trips entries with every shape of extra data', () => {
    fc.assert(
      fc.property(fc.array(snapshotArb, { maxLength: 5 }), (entries) => {
        const bytes = encodeSnapshotTable(entries);
        expect(bytes.byteLength % 8).toBe(0);
        const decoded = decodeSnapshotTable(bytes, entries.length);
        expect(decoded.entries).toEqual(entries);
        expect(decoded.size).toBe(bytes.byteLength);
      }),
      RUNS,
    );
  });
  it('reports a table cut short as truncated, naming the entry', () => {
    const bytes = encodeSnapshotTable([]);
    expect(() => decodeSnapshotTable(bytes, 1, 0x30000)).toThrow(/snapshot\[0\]/);
  });
});

describe('bitmaps', () => {
  it('round-trips the bitmap directory', () => {
    fc.assert(
      fc.property(fc.array(bitmapEntryArb, { maxLength: 5 }), (entries) => {
        const bytes = bitmap.encodeBitmapDirectory(entries);
        expect(bitmap.decodeBitmapDirectory(bytes, entries.length)).toEqual({ entries, size: bytes.byteLength });
      }),
      RUNS,
    );
  });
  it('keeps every bit of bitmap table entries', () =>
    bytesSurvive(8, (b) => bitmap.encodeBitmapTable(bitmap.decodeBitmapTable(b, b.byteLength / 8))));
});

describe('LUKS header', () => {
  it('round-trips', () => {
    fc.assert(fc.property(luksArb, (h) => {
      expect(decodeLuksHeader(encodeLuksHeader(h))).toEqual(h);
    }), RUNS);
  });
});
