/** fast-check generators for every on-disk structure, shaped like the codecs' decoded values. */
import fc from 'fast-check';
import type { BitmapDirectoryEntry } from '../../src/format/bitmap.js';
import type { HeaderExtension } from '../../src/format/extensions.js';
import type { Header } from '../../src/format/header.js';
import type { LuksHeader } from '../../src/format/luks.js';
import { decodeSnapshotExtra, encodeSnapshotExtra, type SnapshotEntry } from '../../src/format/snapshot.js';
import { MAX_BACKING_FORMAT_BYTES } from '../../src/limits.js';

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
export const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
/** Offsets of table entries: bits 9-55, so multiples of 512 below 2^56. */
export const entryOffset = fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }).map((m) => Number(m * 512n));
export const asciiName = (max: number) =>
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_./'.split('')), maxLength: max });

export const headerArb: fc.Arbitrary<Header> = fc
  .record({
    version: fc.constantFrom(2 as const, 3 as const),
    backingFileOffset: u64,
    backingFileSize: u32,
    clusterBits: u32,
    size: u64,
    cryptMethod: u32,
    l1Size: u32,
    l1TableOffset: u64,
    refcountTableOffset: u64,
    refcountTableClusters: u32,
    nbSnapshots: u32,
    snapshotsOffset: u64,
    incompatibleFeatures: u64,
    compatibleFeatures: u64,
    autoclearFeatures: u64,
    refcountOrder: u32,
    extraLength: fc.integer({ min: 0, max: 64 }),
    compressionType: u8,
    tailSeed: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  })
  .map(({ extraLength, tailSeed, ...h }) => {
    if (h.version === 2) {
      return {
        ...h,
        incompatibleFeatures: 0n,
        compatibleFeatures: 0n,
        autoclearFeatures: 0n,
        refcountOrder: 4,
        headerLength: 72,
        compressionType: 0,
        tail: new Uint8Array(0),
      };
    }
    const headerLength = 104 + extraLength;
    return {
      ...h,
      headerLength,
      compressionType: headerLength > 104 ? h.compressionType : 0,
      tail: headerLength > 105 ? tailSeed.slice(0, headerLength - 105) : new Uint8Array(0),
    };
  });

export const extensionArb: fc.Arbitrary<HeaderExtension> = fc.oneof(
  asciiName(MAX_BACKING_FORMAT_BYTES).map((name) => ({ kind: 'backing-format' as const, name })),
  asciiName(300).map((name) => ({ kind: 'data-file' as const, name })),
  fc
    .array(fc.record({ type: u8, bit: u8, name: asciiName(46) }), { maxLength: 6 })
    .map((entries) => ({ kind: 'feature-table' as const, entries })),
  fc.record({ nbBitmaps: u32, reserved: u32, directorySize: u64, directoryOffset: u64 }).map((b) => ({ kind: 'bitmaps' as const, ...b })),
  fc.record({ offset: u64, length: u64 }).map((c) => ({ kind: 'crypto-header' as const, ...c })),
  fc
    .record({
      // any type that is not a known one and not the end marker
      type: u32.filter((t) => ![0, 0xe2792aca, 0x6803f857, 0x23852875, 0x0537be77, 0x44415441].includes(t)),
      data: fc.uint8Array({ maxLength: 40 }),
    })
    .map((u) => ({ kind: 'unknown' as const, ...u })),
);

export const snapshotArb: fc.Arbitrary<SnapshotEntry> = fc
  .record({
    l1TableOffset: u64,
    l1Size: u32,
    id: asciiName(12),
    name: asciiName(40),
    dateSec: u32,
    dateNsec: u32,
    vmClockNsec: u64,
    vmStateSize: u32,
    known: fc.constantFrom(0, 1, 2, 3),
    vmStateSizeLarge: u64,
    diskSize: u64,
    icount: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
    unknown: fc.uint8Array({ maxLength: 24 }),
  })
  .map(({ known, vmStateSizeLarge, diskSize, icount, unknown, ...s }) => {
    const extraData =
      known === 0
        ? unknown.slice(0, unknown.byteLength % 8) // a short, field-less extra area
        : encodeSnapshotExtra(
            {
              vmStateSizeLarge,
              ...(known >= 2 ? { diskSize } : {}),
              ...(known >= 3 ? { icount } : {}),
            },
            known === 3 ? unknown : new Uint8Array(0),
          );
    return { ...s, extraData, extra: decodeSnapshotExtra(extraData) };
  });

export const bitmapEntryArb: fc.Arbitrary<BitmapDirectoryEntry> = fc.record({
  bitmapTableOffset: u64,
  bitmapTableSize: u32,
  flags: u32,
  type: u8,
  granularityBits: u8,
  name: asciiName(60),
  extraData: fc.uint8Array({ maxLength: 20 }),
});

export const luksArb: fc.Arbitrary<LuksHeader> = fc.record({
  version: u16,
  cipherName: asciiName(31),
  cipherMode: asciiName(31),
  hashSpec: asciiName(31),
  payloadOffset: u32,
  keyBytes: u32,
  mkDigest: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  mkDigestSalt: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  mkDigestIter: u32,
  uuid: asciiName(39),
  slots: fc.array(
    fc.record({
      active: u32,
      iterations: u32,
      salt: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      keyMaterialOffset: u32,
      stripes: u32,
    }),
    { minLength: 8, maxLength: 8 },
  ),
});
