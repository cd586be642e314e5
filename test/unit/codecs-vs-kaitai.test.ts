/**
 * What the hand-written encoders write, the parsers generated from spec/*.ksy read back field by
 * field the same as the hand-written decoders (src/verification/conformance/agree.ts puts both in
 * one shape).
 * Fixed-width tables are fed every bit pattern; variable structures come from the encoders.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareDecoders } from '../../src/verification/conformance/agree.js';
import { differences } from '../../src/verification/conformance/plain.js';
import type { Structure } from '../../src/verification/conformance/structures.js';
import { encodeBitmapDirectory } from '../../src/format/bitmap.js';
import { encodeString } from '../../src/format/bytes.js';
import { encodeExtensions } from '../../src/format/extensions.js';
import { encodeHeader } from '../../src/format/header.js';
import { encodeLuksHeader } from '../../src/format/luks.js';
import { encodeSnapshotTable } from '../../src/format/snapshot.js';
import { asciiName, bitmapEntryArb, extensionArb, headerArb, luksArb, snapshotArb } from '../support/arbitraries.js';

const RUNS = { numRuns: 200 };

function agree(s: Structure): void {
  expect(compareDecoders(s)).toEqual([]);
}

const tableBytes = (entrySize: number, maxEntries: number) =>
  fc.uint8Array({ minLength: entrySize, maxLength: entrySize * maxEntries }).map((b) => b.slice(0, b.byteLength - (b.byteLength % entrySize)));

describe('hand-written codecs agree with the Kaitai parsers', () => {
  it('header, extensions and backing file name', () => {
    const arb = fc.record({
      header: headerArb,
      clusterBits: fc.integer({ min: 12, max: 16 }),
      extensions: fc.array(extensionArb, { maxLength: 5 }),
      backing: fc.option(asciiName(100), { nil: undefined }),
    });
    fc.assert(
      fc.property(arb, ({ header, clusterBits, extensions, backing }) => {
        const cluster = new Uint8Array(2 ** clusterBits);
        const exts = encodeExtensions(extensions);
        const extStart = header.version === 2 ? 72 : header.headerLength;
        const extEnd = extStart + exts.byteLength;
        const name = backing === undefined ? undefined : encodeString(backing);
        const h = {
          ...header,
          clusterBits,
          backingFileOffset: name ? BigInt(extEnd) : 0n,
          backingFileSize: name ? name.byteLength : header.backingFileSize,
        };
        cluster.set(encodeHeader(h), 0);
        cluster.set(exts, extStart);
        if (name) cluster.set(name, extEnd);
        agree({ kind: 'header', offset: 0, bytes: cluster });
      }),
      RUNS,
    );
  });

  it('L1 tables, every bit pattern', () => {
    fc.assert(fc.property(tableBytes(8, 16), (bytes) => agree({ kind: 'l1-table', offset: 0, bytes, entries: bytes.byteLength / 8 })), RUNS);
  });

  it('standard and compressed L2 entries for every cluster size, every bit pattern', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), tableBytes(8, 16), (clusterBits, bytes) =>
        agree({ kind: 'l2-table', offset: 0, bytes, entries: bytes.byteLength / 8, extendedL2: false, clusterBits }),
      ),
      RUNS,
    );
  });

  it('extended L2 entries, every bit pattern', () => {
    fc.assert(
      fc.property(fc.integer({ min: 14, max: 21 }), tableBytes(16, 16), (clusterBits, bytes) =>
        agree({ kind: 'l2-table', offset: 0, bytes, entries: bytes.byteLength / 16, extendedL2: true, clusterBits }),
      ),
      RUNS,
    );
  });

  it('refcount tables, every bit pattern', () => {
    fc.assert(fc.property(tableBytes(8, 16), (bytes) => agree({ kind: 'refcount-table', offset: 0, bytes, entries: bytes.byteLength / 8 })), RUNS);
  });

  it('refcount blocks of every order 0..6, every bit pattern', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (refcountOrder, bytes) =>
        agree({ kind: 'refcount-block', offset: 0, bytes, entries: (bytes.byteLength * 8) >> refcountOrder, refcountOrder }),
      ),
      RUNS,
    );
  });

  it('snapshot tables', () => {
    fc.assert(
      fc.property(fc.array(snapshotArb, { maxLength: 5 }), (entries) =>
        agree({ kind: 'snapshot-table', offset: 0, bytes: encodeSnapshotTable(entries), entries: entries.length }),
      ),
      RUNS,
    );
  });

  it('bitmap directories', () => {
    fc.assert(
      fc.property(fc.array(bitmapEntryArb, { maxLength: 5 }), (entries) =>
        agree({ kind: 'bitmap-directory', offset: 0, bytes: encodeBitmapDirectory(entries), entries: entries.length }),
      ),
      RUNS,
    );
  });

  it('bitmap tables, every bit pattern', () => {
    fc.assert(fc.property(tableBytes(8, 16), (bytes) => agree({ kind: 'bitmap-table', offset: 0, bytes, entries: bytes.byteLength / 8 })), RUNS);
  });

  it('LUKS headers', () => {
    fc.assert(fc.property(luksArb, (h) => agree({ kind: 'luks-header', offset: 0, bytes: encodeLuksHeader(h) })), RUNS);
  });

  it('reports a disagreement with its path (the comparison is not vacuous)', () => {
    expect(differences({ entries: [{ offset: 512n, copied: true }] }, { entries: [{ offset: 1024n, copied: true }] })).toEqual([
      { path: 'entries[0].offset', ours: '512n', kaitai: '1024n' },
    ]);
    expect(differences([1, 2], [1])).toEqual([{ path: '.length', ours: '2', kaitai: '1' }]);
    expect(differences({ a: 1 }, { b: 1 }).map((d) => d.path)).toEqual(['a', 'b']);
    expect(differences(512, 512n)).toHaveLength(1);
  });
});
