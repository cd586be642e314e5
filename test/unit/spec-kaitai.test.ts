// The Kaitai parsers generated from spec/*.ksy, checked against hand-built byte buffers.
// Every buffer below is written out byte by byte from the QCOW2 specification and every
// expected value was calculated by hand; nothing here is produced by the code under test.
import { describe, expect, it } from 'vitest';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import {
  joinU64,
  parseBitmapDirectory,
  parseBitmapTable,
  parseCompressedDescriptor,
  parseHeader,
  parseL1Table,
  parseLuksHeader,
  parseL2Table,
  parseRefcountBlock,
  parseRefcountTable,
  parseSnapshotTable,
  refcountValues,
  Luks1Header,
  Qcow2BitmapDirectory,
  Qcow2BitmapTable,
  Qcow2CompressedDescriptor,
  Qcow2Header,
  Qcow2L1Table,
  Qcow2L2Table,
  Qcow2RefcountBlock,
  Qcow2RefcountTable,
  Qcow2SnapshotTable,
} from '../../src/spec/kaitai.js';

// ---------------------------------------------------------------------------------------------
// Byte helpers: hex strings (spaces ignored), ASCII strings, zero runs.

type Part = string | number[] | Uint8Array;

function hex(s: string): number[] {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex: ${s}`);
  const out: number[] = [];
  for (let i = 0; i < clean.length; i += 2) out.push(parseInt(clean.slice(i, i + 2), 16));
  return out;
}

function ascii(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

function bytes(...parts: Part[]): Uint8Array {
  const all: number[] = [];
  for (const p of parts) all.push(...(typeof p === 'string' ? hex(p) : Array.from(p)));
  return Uint8Array.from(all);
}

// ---------------------------------------------------------------------------------------------
// Header

describe('qcow2_header', () => {
  it('parses a version 2 header without extensions (backing file name at byte 72)', () => {
    const img = bytes(
      '514649fb', //                 magic "QFI\xfb"
      '00000002', //                 version 2
      '00000000 00000048', //        backing_file_offset 72
      '00000008', //                 backing_file_size 8
      '00000010', //                 cluster_bits 16
      '00000001 00000000', //        size 4 GiB
      '00000000', //                 crypt_method 0
      '00000008', //                 l1_size 8
      '00000000 00030000', //        l1_table_offset 0x30000
      '00000000 00010000', //        refcount_table_offset 0x10000
      '00000001', //                 refcount_table_clusters 1
      '00000000', //                 nb_snapshots 0
      '00000000 00000000', //        snapshots_offset 0
      ascii('base.img'), //          backing file name at 72
      zeros(64),
    );
    const h = parseHeader(img);
    expect(h).toBeInstanceOf(Qcow2Header);
    expect(Array.from(h.magic)).toEqual([0x51, 0x46, 0x49, 0xfb]);
    expect(h.version).toBe(2);
    expect(h.backingFileOffsetHi).toBe(0);
    expect(h.backingFileOffsetLo).toBe(72);
    expect(h.backingFileOffset).toBe(72);
    expect(h.hasBackingFile).toBe(true);
    expect(h.backingFileSize).toBe(8);
    expect(h.clusterBits).toBe(16);
    expect(h.clusterSize).toBe(65536);
    expect(h.sizeHi).toBe(1);
    expect(h.sizeLo).toBe(0);
    expect(h.size).toBe(4294967296);
    expect(h.cryptMethod).toBe(0);
    expect(h.l1Size).toBe(8);
    expect(h.l1TableOffset).toBe(0x30000);
    expect(h.refcountTableOffset).toBe(0x10000);
    expect(h.refcountTableClusters).toBe(1);
    expect(h.nbSnapshots).toBe(0);
    expect(h.snapshotsOffset).toBe(0);
    // No v3 fields.
    expect(h.incompatibleFeaturesHi).toBeUndefined();
    expect(h.incompatibleFeaturesLo).toBeUndefined();
    expect(h.compatibleFeaturesLo).toBeUndefined();
    expect(h.autoclearFeaturesLo).toBeUndefined();
    expect(h.refcountOrder).toBeUndefined();
    expect(h.headerLength).toBeUndefined();
    expect(h.compressionType).toBeUndefined();
    expect(h.unknownHeaderFields).toBeUndefined();
    expect(h.incompatDirty).toBeUndefined();
    expect(h.headerSize).toBe(72);
    expect(h.refcountBits).toBe(16);
    // The extension area ends where the backing file name starts: no extensions.
    expect(h.extensionsEnd).toBe(72);
    expect(h.extensions).toBeUndefined();
    expect(h.backingFileName).toBe('base.img');
  });

  it('parses a version 2 header followed by an end-of-extensions marker', () => {
    const img = bytes(
      '514649fb 00000002',
      '00000000 00000000 00000000', // no backing file
      '0000000c', //                    cluster_bits 12
      '00000000 00100000', //           size 1 MiB
      '00000000 00000001 00000000 00003000 00000000 00001000 00000001 00000000 00000000 00000000',
      '00000000 00000000', //           end of extensions
      zeros(100),
    );
    const h = parseHeader(img);
    expect(h.version).toBe(2);
    expect(h.hasBackingFile).toBe(false);
    expect(h.backingFileName).toBeUndefined();
    expect(h.clusterSize).toBe(4096);
    expect(h.size).toBe(1048576);
    expect(h.l1Size).toBe(1);
    expect(h.l1TableOffset).toBe(0x3000);
    expect(h.refcountTableOffset).toBe(0x1000);
    // Clamped to the bytes supplied (4096-byte cluster, 180 bytes given).
    expect(h.extensionsEnd).toBe(180);
    expect(h.extensions).toHaveLength(1);
    expect(h.extensions?.[0]?.type).toBe(Qcow2Header.ExtensionType.END);
    expect(h.extensions?.[0]?.length).toBe(0);
  });

  // A v3 header with header_length 112, compression_type 1, 7 unknown header bytes, one
  // extension of every known type, one unknown extension and the end marker; the backing file
  // name lives at byte 512.
  const v3 = bytes(
    '514649fb', //                   0: magic
    '00000003', //                   4: version 3
    '00000000 00000200', //          8: backing_file_offset 512
    '0000000a', //                  16: backing_file_size 10
    '00000010', //                  20: cluster_bits 16
    '00000002 80000000', //         24: size 0x2_8000_0000 = 10 GiB
    '00000002', //                  32: crypt_method 2 (LUKS)
    '00000014', //                  36: l1_size 20
    '00000000 00030000', //         40: l1_table_offset 0x30000
    '00000000 00010000', //         48: refcount_table_offset 0x10000
    '00000001', //                  56: refcount_table_clusters 1
    '00000002', //                  60: nb_snapshots 2
    '00000001 00050000', //         64: snapshots_offset 0x1_0005_0000
    '00000000 0000001d', //         72: incompatible: dirty(0) external data(2) compression(3) extended L2(4)
    '00000000 00000001', //         80: compatible: lazy refcounts
    '80000000 00000003', //         88: autoclear: bitmaps(0) raw external data(1), bit 63
    '00000004', //                  96: refcount_order 4
    '00000070', //                 100: header_length 112
    '01', //                       104: compression_type 1 (zstd)
    'aabbccddeeff11', //           105: unknown header fields (7 bytes)
    // 112: backing file format "qcow2"
    'e2792aca 00000005',
    ascii('qcow2'),
    '000000',
    // 128: feature name table, 2 entries of 48 bytes
    '6803f857 00000060',
    '00 00',
    ascii('dirty bit'),
    zeros(37),
    '02 01',
    ascii('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST'), // 46 bytes, no NUL
    // 232: bitmaps extension
    '23852875 00000018',
    '00000002', //                  nb_bitmaps 2
    '00000000', //                  reserved
    '00000000 00000050', //         bitmap_directory_size 80
    '00000000 00040000', //         bitmap_directory_offset 0x40000
    // 264: full disk encryption header pointer
    '0537be77 00000010',
    '00000000 00050000', //         offset 0x50000
    '00000000 00001000', //         length 4096
    // 288: external data file name "data.raw"
    '44415441 00000008',
    ascii('data.raw'),
    // 304: unknown extension, 3 bytes + 5 padding
    '12345678 00000003',
    'deadbe',
    '0000000000',
    // 320: end
    '00000000 00000000',
    // 328..511
    zeros(184),
    // 512: backing file name
    ascii('base.qcow2'),
  );

  it('parses a version 3 header with header_length 112 and compression_type 1', () => {
    expect(v3.length).toBe(522);
    const h = parseHeader(v3);
    expect(h.version).toBe(3);
    expect(h.backingFileOffset).toBe(512);
    expect(h.backingFileSize).toBe(10);
    expect(h.clusterBits).toBe(16);
    expect(h.sizeHi).toBe(2);
    expect(h.sizeLo).toBe(0x80000000);
    expect(h.size).toBe(10737418240);
    expect(h.cryptMethod).toBe(Qcow2Header.CryptMethod.LUKS);
    expect(h.cryptMethod).toBe(2);
    expect(h.l1Size).toBe(20);
    expect(h.l1TableOffset).toBe(196608);
    expect(h.refcountTableOffset).toBe(65536);
    expect(h.refcountTableClusters).toBe(1);
    expect(h.nbSnapshots).toBe(2);
    expect(h.snapshotsOffsetHi).toBe(1);
    expect(h.snapshotsOffsetLo).toBe(0x50000);
    expect(h.snapshotsOffset).toBe(4295294976);
    expect(h.incompatibleFeaturesHi).toBe(0);
    expect(h.incompatibleFeaturesLo).toBe(0x1d);
    expect(h.incompatDirty).toBe(true);
    expect(h.incompatCorrupt).toBe(false);
    expect(h.incompatExternalDataFile).toBe(true);
    expect(h.incompatCompressionType).toBe(true);
    expect(h.incompatExtendedL2).toBe(true);
    expect(h.hasUnknownIncompatibleFeatures).toBe(false);
    expect(h.compatibleFeaturesHi).toBe(0);
    expect(h.compatibleFeaturesLo).toBe(1);
    expect(h.compatLazyRefcounts).toBe(true);
    expect(h.autoclearFeaturesHi).toBe(0x80000000);
    expect(h.autoclearFeaturesLo).toBe(3);
    expect(h.autoclearBitmaps).toBe(true);
    expect(h.autoclearRawExternalData).toBe(true);
    expect(h.refcountOrder).toBe(4);
    expect(h.refcountBits).toBe(16);
    expect(h.headerLength).toBe(112);
    expect(h.headerSize).toBe(112);
    expect(h.compressionType).toBe(1);
    expect(h.compressionType).toBe(Qcow2Header.CompressionType.ZSTD);
    expect(Array.from(h.unknownHeaderFields ?? [])).toEqual([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11]);
    expect(h.extensionsEnd).toBe(512);
    expect(h.backingFileName).toBe('base.qcow2');
  });

  it('parses every header extension type, unknown ones as raw bytes', () => {
    const h = parseHeader(v3);
    const ext = h.extensions ?? [];
    expect(ext.map((e) => e.type)).toEqual([
      0xe2792aca, 0x6803f857, 0x23852875, 0x0537be77, 0x44415441, 0x12345678, 0,
    ]);
    expect(ext.map((e) => e.length)).toEqual([5, 96, 24, 16, 8, 3, 0]);
    expect(ext.map((e) => e.padding.length)).toEqual([3, 0, 0, 0, 0, 5, 0]);

    const [fmt, features, bitmaps, fde, dataFile, unknown, end] = ext;
    expect(fmt?.type).toBe(Qcow2Header.ExtensionType.BACKING_FILE_FORMAT);
    expect(fmt?.data).toBeInstanceOf(Qcow2Header.BackingFileFormatName);
    expect((fmt?.data as Qcow2Header.BackingFileFormatName).name).toBe('qcow2');

    expect(features?.data).toBeInstanceOf(Qcow2Header.FeatureNameTable);
    const table = features?.data as Qcow2Header.FeatureNameTable;
    expect(table.entries).toHaveLength(2);
    expect(table.entries[0]?.type).toBe(Qcow2Header.FeatureType.INCOMPATIBLE);
    expect(table.entries[0]?.bitNumber).toBe(0);
    expect(table.entries[0]?.name).toBe('dirty bit');
    expect(table.entries[1]?.type).toBe(2);
    expect(table.entries[1]?.bitNumber).toBe(1);
    expect(table.entries[1]?.name).toBe('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST');

    expect(bitmaps?.data).toBeInstanceOf(Qcow2Header.BitmapsExtension);
    const bm = bitmaps?.data as Qcow2Header.BitmapsExtension;
    expect(bm.nbBitmaps).toBe(2);
    expect(bm.reserved).toBe(0);
    expect(bm.bitmapDirectorySizeHi).toBe(0);
    expect(bm.bitmapDirectorySizeLo).toBe(80);
    expect(bm.bitmapDirectorySize).toBe(80);
    expect(bm.bitmapDirectoryOffset).toBe(0x40000);

    expect(fde?.data).toBeInstanceOf(Qcow2Header.FullDiskEncryptionHeaderPointer);
    const f = fde?.data as Qcow2Header.FullDiskEncryptionHeaderPointer;
    expect([f.offsetHi, f.offsetLo, f.lengthHi, f.lengthLo]).toEqual([0, 0x50000, 0, 4096]);
    expect(f.offset).toBe(327680);
    expect(f.length).toBe(4096);

    expect(dataFile?.data).toBeInstanceOf(Qcow2Header.ExternalDataFileName);
    expect((dataFile?.data as Qcow2Header.ExternalDataFileName).name).toBe('data.raw');

    expect(unknown?.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(unknown?.data as Uint8Array)).toEqual([0xde, 0xad, 0xbe]);

    expect(end?.type).toBe(Qcow2Header.ExtensionType.END);
    expect((end?.data as Uint8Array).length).toBe(0);
  });

  it('reports unknown incompatible feature bits', () => {
    const img = bytes(
      '514649fb 00000003 00000000 00000000 00000000 00000010 00000000 00010000',
      zeros(40), //                 crypt_method .. snapshots_offset
      '80000000 00000020', //       incompatible: bits 63 and 5
      '00000000 00000000 00000000 00000000',
      '00000004 00000068', //       refcount_order 4, header_length 104
      '00000000 00000000', //       end of extensions
    );
    const h = parseHeader(img);
    expect(h.headerLength).toBe(104);
    expect(h.compressionType).toBeUndefined();
    expect(h.unknownHeaderFields).toBeUndefined();
    expect(h.incompatibleFeaturesHi).toBe(0x80000000);
    expect(h.incompatibleFeaturesLo).toBe(0x20);
    expect(h.hasUnknownIncompatibleFeatures).toBe(true);
    expect(h.incompatDirty).toBe(false);
    expect(h.extensions).toHaveLength(1);
  });

  it('rejects a bad magic, an unknown version and a short header_length', () => {
    const good = Array.from(v3);
    const badMagic = Uint8Array.from(good);
    badMagic[3] = 0xfa;
    expect(() => parseHeader(badMagic)).toThrow();
    const badVersion = Uint8Array.from(good);
    badVersion[7] = 4;
    expect(() => parseHeader(badVersion)).toThrow();
    const shortLength = Uint8Array.from(good);
    shortLength[103] = 0x60; // header_length 96
    expect(() => parseHeader(shortLength)).toThrow();
    expect(() => parseHeader(v3.subarray(0, 50))).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// L1 table

describe('qcow2_l1_table', () => {
  it('parses L1 entries with COPIED, zero, bit 55 and reserved bits', () => {
    const t = parseL1Table(
      bytes(
        '80000000 00050000', // COPIED, L2 table at 0x50000
        '00000000 00000000', // unallocated
        '80ffffff fffffe00', // COPIED, offset bits 9-55 all set
        '7f000000 000001ff', // reserved bits 56-62 and 0-8 set, offset 0
      ),
      4,
    );
    expect(t).toBeInstanceOf(Qcow2L1Table);
    expect(t.numEntries).toBe(4);
    const [a, b, c, d] = t.entries;
    expect([a?.copied, a?.reservedHi, a?.offsetHi, a?.offsetLo, a?.reservedLo]).toEqual([true, 0, 0, 640, 0]);
    expect(a?.offset).toBe(0x50000);
    expect(a?.isUnallocated).toBe(false);
    expect(b?.copied).toBe(false);
    expect(b?.offset).toBe(0);
    expect(b?.isUnallocated).toBe(true);
    expect(c?.offsetHi).toBe(0xffffff);
    expect(c?.offsetLo).toBe(0x7fffff);
    expect(c?.offset).toBe(72057594037927424); // 2^56 - 512, exact
    expect(c?.hasReservedBits).toBe(false);
    expect([d?.copied, d?.reservedHi, d?.reservedLo, d?.offset]).toEqual([false, 127, 511, 0]);
    expect(d?.hasReservedBits).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// L2 table

describe('qcow2_l2_table', () => {
  it('keeps COPIED, the zero flag and offset bit 55 of a standard entry (no bit loss)', () => {
    const t = parseL2Table(
      bytes(
        '80800000 00010001', // COPIED | bit 55 | offset 0x10000 | reads-as-zero
        '40c00001 23456abc', // compressed, cluster_bits 16: 3 more sectors, offset 0x1_2345_6abc
        '00000000 00000000', // unallocated
        '80000000 00000000', // COPIED with offset 0 (external data file)
      ),
      { extendedL2: false, clusterBits: 16, numEntries: 4 },
    );
    expect(t).toBeInstanceOf(Qcow2L2Table);
    expect(t.entrySize).toBe(8);
    const [std, comp, unalloc, ext0] = t.entries;
    expect(std?.copied).toBe(true);
    expect(std?.compressed).toBe(false);
    expect(std?.reservedHi).toBe(0);
    expect(std?.offsetHi).toBe(0x800000);
    expect(std?.offsetLo).toBe(128);
    expect(std?.reservedLo).toBe(0);
    expect(std?.readsAsZero).toBe(true);
    expect(std?.offset).toBe(36028797019029504); // 2^55 + 2^16, exact
    expect(std?.isUnallocated).toBe(false);
    expect(std?.descHi).toBeUndefined();
    expect(std?.compressedDescriptor).toBeUndefined();
    expect(std?.zeroBitmap).toBeUndefined();
    expect(std?.allocBitmap).toBeUndefined();

    expect(comp?.copied).toBe(false);
    expect(comp?.compressed).toBe(true);
    expect(comp?.offsetHi).toBeUndefined();
    expect(comp?.readsAsZero).toBeUndefined();
    expect(comp?.offset).toBeUndefined();
    expect(comp?.descHi).toBe(0x00c00001);
    expect(comp?.descLo).toBe(0x23456abc);
    const d = comp?.compressedDescriptor;
    expect(d).toBeInstanceOf(Qcow2CompressedDescriptor);
    expect(d?.flagBits).toBe(1);
    expect(d?.offsetBits).toBe(54);
    expect(d?.nbSectors).toBe(3);
    expect(d?.offsetHi).toBe(1);
    expect(d?.offsetLo).toBe(0x23456abc);
    expect(d?.offset).toBe(4886719164);
    expect(d?.sectorOffset).toBe(188);
    expect(d?.compressedSize).toBe(1860);

    expect(unalloc?.isUnallocated).toBe(true);
    expect(unalloc?.offset).toBe(0);
    expect(ext0?.copied).toBe(true);
    expect(ext0?.offset).toBe(0);
    expect(ext0?.isUnallocated).toBe(false);
  });

  it('parses extended L2 entries (zero bitmap first, then allocation bitmap)', () => {
    const t = parseL2Table(
      bytes(
        '80000000 00050000 0000ff00 000000ff', // COPIED, 0x50000, zero 8-15, alloc 0-7
        '40400000 00001200 00000000 00000000', // compressed, 1 more sector at 0x1200
      ),
      { extendedL2: true, clusterBits: 16, numEntries: 2 },
    );
    expect(t.entrySize).toBe(16);
    expect(t.extendedL2).toBe(true);
    const [a, b] = t.entries;
    expect(a?.copied).toBe(true);
    expect(a?.offset).toBe(0x50000);
    expect(a?.readsAsZero).toBe(false);
    expect(a?.zeroBitmap).toBe(0xff00);
    expect(a?.allocBitmap).toBe(0xff);
    expect(b?.compressed).toBe(true);
    expect(b?.zeroBitmap).toBe(0);
    expect(b?.allocBitmap).toBe(0);
    expect(b?.compressedDescriptor?.nbSectors).toBe(1);
    expect(b?.compressedDescriptor?.offset).toBe(0x1200);
    expect(b?.compressedDescriptor?.compressedSize).toBe(1024);
  });
});

// ---------------------------------------------------------------------------------------------
// Compressed cluster descriptor

describe('qcow2_compressed_descriptor', () => {
  it('splits at x = 61 for cluster_bits 9 (512-byte clusters)', () => {
    // bit 62 compressed, bit 61 = 1 additional sector, offset 0x1234_5678_9abc_def0 (bits 0-60)
    const d = parseCompressedDescriptor(bytes('72345678 9abcdef0'), 9);
    expect(d.clusterBits).toBe(9);
    expect(d.flagBits).toBe(1);
    expect(d.descHi).toBe(0x32345678);
    expect(d.descLo).toBe(0x9abcdef0);
    expect(d.offsetBits).toBe(61);
    expect(d.nbSectors).toBe(1);
    expect(d.offsetHi).toBe(0x12345678);
    expect(d.offsetLo).toBe(0x9abcdef0);
    expect(joinU64(d.offsetHi, d.offsetLo)).toBe(0x123456789abcdef0n);
    expect(d.sectorOffset).toBe(240);
    expect(d.compressedSize).toBe(784);
  });

  it('splits at x = 54 for cluster_bits 16', () => {
    // 255 additional sectors (bits 54-61), offset 2^53 + 1
    const d = parseCompressedDescriptor(bytes('7fe00000 00000001'), 16);
    expect(d.offsetBits).toBe(54);
    expect(d.nbSectors).toBe(255);
    expect(d.offsetHi).toBe(0x200000);
    expect(d.offsetLo).toBe(1);
    expect(joinU64(d.offsetHi, d.offsetLo)).toBe(9007199254740993n);
    expect(d.offset).toBe(2 ** 53); // the combined number is inexact above 2^53: use hi/lo
    expect(d.sectorOffset).toBe(1);
    expect(d.compressedSize).toBe(131071);
  });

  it('splits at x = 49 for cluster_bits 21 (2 MiB clusters), from bytes or a bigint', () => {
    // 8191 additional sectors (bits 49-61), offset 0x1_2345_6789_abcd
    for (const input of [bytes('7fff2345 6789abcd'), 0x3fff23456789abcdn]) {
      const d = parseCompressedDescriptor(input, 21);
      expect(d.flagBits).toBe(typeof input === 'bigint' ? 0 : 1);
      expect(d.offsetBits).toBe(49);
      expect(d.nbSectors).toBe(8191);
      expect(d.offsetHi).toBe(0x12345);
      expect(d.offsetLo).toBe(0x6789abcd);
      expect(d.offset).toBe(0x123456789abcd);
      expect(d.sectorOffset).toBe(461);
      expect(d.compressedSize).toBe(4193843);
    }
  });

  it('rejects cluster sizes outside 9..21', () => {
    expect(() => parseCompressedDescriptor(bytes('40000000 00000000'), 8)).toThrow(RangeError);
    expect(() => parseCompressedDescriptor(bytes('40000000 00000000'), 22)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Refcount table and blocks

describe('qcow2_refcount_table', () => {
  it('parses refcount table entries', () => {
    const t = parseRefcountTable(
      bytes(
        '00000000 00020000', // block at 0x20000
        '00000000 00000000', // not allocated
        'ffffffff fffffe00', // bits 9-63 all set
        '00000000 000101ff', // block at 0x10000, reserved bits 0-8 set
      ),
      4,
    );
    expect(t).toBeInstanceOf(Qcow2RefcountTable);
    const [a, b, c, d] = t.entries;
    expect([a?.offsetHi, a?.offsetLo, a?.reserved, a?.offset]).toEqual([0, 256, 0, 131072]);
    expect(b?.isUnallocated).toBe(true);
    expect(c?.offsetHi).toBe(0xffffffff);
    expect(c?.offsetLo).toBe(0x7fffff);
    expect(joinU64(c?.offsetHi ?? 0, (c?.offsetLo ?? 0) * 512)).toBe(0xfffffffffffffe00n);
    expect([d?.offsetLo, d?.reserved, d?.offset]).toEqual([128, 511, 65536]);
  });
});

describe('qcow2_refcount_block', () => {
  const values = (b: Qcow2RefcountBlock) => b.entries.map((e) => e.value);

  it('order 0: 1-bit refcounts, least significant bit first', () => {
    const b = parseRefcountBlock(bytes('a5 01'), 0, 16);
    expect(b.refcountBits).toBe(1);
    expect(values(b)).toEqual([1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(b.entries[0]?.valueB1).toBe(true);
    expect(b.entries[1]?.valueB1).toBe(false);
    expect(b.entries[0]?.valueU2).toBeUndefined();
  });

  it('order 1: 2-bit refcounts, least significant bits first', () => {
    const b = parseRefcountBlock(bytes('e4 1b'), 1, 8);
    expect(values(b)).toEqual([0, 1, 2, 3, 3, 2, 1, 0]);
    expect(b.entries[3]?.valueB2).toBe(3);
  });

  it('order 2: 4-bit refcounts, low nibble first', () => {
    const b = parseRefcountBlock(bytes('21 f3'), 2, 4);
    expect(values(b)).toEqual([1, 2, 3, 15]);
    expect(b.entries[3]?.valueB4).toBe(15);
  });

  it('order 3: 8-bit refcounts', () => {
    const b = parseRefcountBlock(bytes('00 01 7f ff'), 3, 4);
    expect(values(b)).toEqual([0, 1, 127, 255]);
    expect(b.entries[3]?.valueU1).toBe(255);
  });

  it('order 4: 16-bit big-endian refcounts', () => {
    const b = parseRefcountBlock(bytes('0001 1234 ffff'), 4, 3);
    expect(values(b)).toEqual([1, 0x1234, 65535]);
    expect(b.entries[1]?.valueU2).toBe(4660);
  });

  it('order 5: 32-bit big-endian refcounts', () => {
    const b = parseRefcountBlock(bytes('00000001 deadbeef'), 5, 2);
    expect(values(b)).toEqual([1, 3735928559]);
    expect(b.entries[1]?.valueU4).toBe(0xdeadbeef);
  });

  it('order 6: 64-bit refcounts above 2^53 are exact through hi/lo', () => {
    const b = parseRefcountBlock(
      bytes('00000000 00000002', '00200000 00000001', 'ffffffff ffffffff'),
      6,
      3,
    );
    expect(b.refcountBits).toBe(64);
    expect(b.entries.map((e) => [e.valueHi, e.valueLo])).toEqual([
      [0, 2],
      [0x200000, 1],
      [0xffffffff, 0xffffffff],
    ]);
    expect(refcountValues(b)).toEqual([2n, 9007199254740993n, 18446744073709551615n]);
    expect(b.entries[0]?.value).toBe(2);
  });

  it('rejects refcount orders above 6', () => {
    expect(() => parseRefcountBlock(bytes('00'), 7, 1)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Snapshot table

describe('qcow2_snapshot_table', () => {
  const table = bytes(
    // entry 0: no extra data; 40 + 0 + 1 + 5 = 46, 2 bytes padding
    '00000000 00070000', // l1_table_offset 0x70000
    '00000014', //          l1_size 20
    '0001 0005', //         id_str_size 1, name_size 5
    '5f5e1000', //          date_sec 1600000000
    '1dcd6500', //          date_nsec 500000000
    '00000001 00000000', // vm_clock_nsec 2^32
    '00000000', //          vm_state_size 0
    '00000000', //          extra_data_size 0
    ascii('1'),
    ascii('first'),
    '0000',
    // entry 1: 16 bytes extra data; 40 + 16 + 1 + 6 = 63, 1 byte padding
    '00000000 00080000',
    '00000014',
    '0001 0006',
    '5f5e1064', //          date_sec 1600000100
    '00000000',
    '00000000 00000000',
    '00001000', //          vm_state_size 4096
    '00000010', //          extra_data_size 16
    '00000001 00000000', // vm_state_size_large 2^32
    '00000002 80000000', // disk_size 10 GiB
    ascii('2'),
    ascii('second'),
    '00',
    // entry 2: 24 bytes extra data; 40 + 24 + 1 + 10 = 75, 5 bytes padding
    '00000000 00090000',
    '00000014',
    '0001 000a',
    '5f5e10c8 00000000 00000000 00000000 00000000',
    '00000018', //          extra_data_size 24
    '00000000 00000000', // vm_state_size_large 0
    '00000000 40000000', // disk_size 1 GiB
    'ffffffff ffffffff', // icount -1 (disabled)
    ascii('3'),
    ascii('third-snap'),
    '0000000000',
    // entry 3: 32 bytes extra data (8 unknown); 40 + 32 + 2 + 0 = 74, 6 bytes padding
    '00000000 000a0000',
    '00000014',
    '0002 0000',
    '5f5e112c 00000000 00000000 00000000 00000000',
    '00000020', //          extra_data_size 32
    '00000000 00002000', // vm_state_size_large 8192
    '00000001 00000000', // disk_size 4 GiB
    '00000000 000003e8', // icount 1000
    '0102030405060708', //  unknown extra data
    ascii('10'),
    '000000000000',
  );

  it('parses entries with extra data sizes 0, 16, 24 and 32', () => {
    expect(table.length).toBe(48 + 64 + 80 + 80);
    const t = parseSnapshotTable(table, 4);
    expect(t).toBeInstanceOf(Qcow2SnapshotTable);
    expect(t.entries.map((e) => e.entrySize)).toEqual([48, 64, 80, 80]);
    expect(t.entries.map((e) => e.extraDataSize)).toEqual([0, 16, 24, 32]);
    expect(t.entries.map((e) => e.idStr)).toEqual(['1', '2', '3', '10']);
    expect(t.entries.map((e) => e.name)).toEqual(['first', 'second', 'third-snap', '']);
    expect(t.entries.map((e) => e.padding.length)).toEqual([2, 1, 5, 6]);
    expect(t.entries.map((e) => e.l1TableOffset)).toEqual([0x70000, 0x80000, 0x90000, 0xa0000]);
    expect(t.entries.map((e) => e.l1Size)).toEqual([20, 20, 20, 20]);
    expect(t.entries.map((e) => e.dateSec)).toEqual([1600000000, 1600000100, 1600000200, 1600000300]);

    const [s0, s1, s2, s3] = t.entries;
    expect(s0?.idStrSize).toBe(1);
    expect(s0?.nameSize).toBe(5);
    expect(s0?.dateNsec).toBe(500000000);
    expect([s0?.vmClockNsecHi, s0?.vmClockNsecLo, s0?.vmClockNsec]).toEqual([1, 0, 4294967296]);
    expect(s0?.vmStateSize).toBe(0);
    expect(s0?.extraData.vmStateSizeLargeHi).toBeUndefined();
    expect(s0?.extraData.diskSizeHi).toBeUndefined();
    expect(s0?.extraData.icountHi).toBeUndefined();
    expect(s0?.extraData.unknownExtraData.length).toBe(0);

    expect(s1?.vmStateSize).toBe(4096);
    expect(s1?.extraData.vmStateSizeLargeHi).toBe(1);
    expect(s1?.extraData.vmStateSizeLargeLo).toBe(0);
    expect(s1?.extraData.vmStateSizeLarge).toBe(4294967296);
    expect(s1?.extraData.diskSizeHi).toBe(2);
    expect(s1?.extraData.diskSizeLo).toBe(0x80000000);
    expect(s1?.extraData.diskSize).toBe(10737418240);
    expect(s1?.extraData.icountHi).toBeUndefined();
    expect(s1?.extraData.icountDisabled).toBeUndefined();
    expect(s1?.extraData.unknownExtraData.length).toBe(0);

    expect(s2?.extraData.vmStateSizeLarge).toBe(0);
    expect(s2?.extraData.diskSize).toBe(1073741824);
    expect([s2?.extraData.icountHi, s2?.extraData.icountLo]).toEqual([0xffffffff, 0xffffffff]);
    expect(s2?.extraData.icountDisabled).toBe(true);
    expect(s2?.extraData.unknownExtraData.length).toBe(0);

    expect(s3?.idStrSize).toBe(2);
    expect(s3?.nameSize).toBe(0);
    expect(s3?.extraData.vmStateSizeLarge).toBe(8192);
    expect(s3?.extraData.diskSize).toBe(4294967296);
    expect([s3?.extraData.icountHi, s3?.extraData.icountLo]).toEqual([0, 1000]);
    expect(s3?.extraData.icountDisabled).toBe(false);
    expect(Array.from(s3?.extraData.unknownExtraData ?? [])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(s3?._raw_extraData.length).toBe(32);
  });

  it('keeps a partial known field as unknown extra data', () => {
    // extra_data_size 12: vm_state_size_large (8) + 4 bytes that are not a whole disk_size
    const t = parseSnapshotTable(
      bytes(
        '00000000 00070000 00000001 0001 0001 00000000 00000000 00000000 00000000 00000000',
        '0000000c',
        '00000000 00000200',
        'cafebabe',
        ascii('1'),
        ascii('x'),
        '0000', // 40 + 12 + 1 + 1 = 54, padded to 56
      ),
      1,
    );
    const s = t.entries[0];
    expect(s?.extraData.vmStateSizeLarge).toBe(512);
    expect(s?.extraData.diskSizeHi).toBeUndefined();
    expect(Array.from(s?.extraData.unknownExtraData ?? [])).toEqual([0xca, 0xfe, 0xba, 0xbe]);
    expect(s?.padding.length).toBe(2);
    expect(s?.entrySize).toBe(56);
  });
});

// ---------------------------------------------------------------------------------------------
// Bitmaps

describe('qcow2_bitmap_directory', () => {
  it('parses a directory with two entries', () => {
    const dir = bytes(
      // entry 0: 24 + 0 + 6 = 30, 2 bytes padding
      '00000000 00060000', // bitmap_table_offset 0x60000
      '00000010', //          bitmap_table_size 16
      '00000003', //          flags: in_use, auto
      '01', //                type 1 (dirty tracking)
      '10', //                granularity_bits 16
      '0006', //              name_size 6
      '00000000', //          extra_data_size 0
      ascii('bitmap'),
      '0000',
      // entry 1: 24 + 4 + 3 = 31, 1 byte padding
      '00000001 00000000', // bitmap_table_offset 2^32
      '00000001', //          bitmap_table_size 1
      '0000000c', //          flags: extra_data_compatible, reserved bit 3
      '01',
      '09', //                granularity_bits 9
      '0003',
      '00000004', //          extra_data_size 4
      'deadbeef',
      ascii('two'),
      '00',
    );
    expect(dir.length).toBe(64);
    const d = parseBitmapDirectory(dir, 2);
    expect(d).toBeInstanceOf(Qcow2BitmapDirectory);
    const [a, b] = d.entries;
    expect([a?.bitmapTableOffsetHi, a?.bitmapTableOffsetLo, a?.bitmapTableOffset]).toEqual([0, 0x60000, 0x60000]);
    expect(a?.bitmapTableSize).toBe(16);
    expect(a?.flags).toBe(3);
    expect([a?.inUse, a?.auto, a?.extraDataCompatible, a?.hasReservedFlags]).toEqual([true, true, false, false]);
    expect(a?.type).toBe(Qcow2BitmapDirectory.BitmapType.DIRTY_TRACKING);
    expect(a?.granularityBits).toBe(16);
    expect(a?.nameSize).toBe(6);
    expect(a?.extraDataSize).toBe(0);
    expect(a?.extraData.length).toBe(0);
    expect(a?.name).toBe('bitmap');
    expect(a?.padding.length).toBe(2);
    expect(a?.entrySize).toBe(32);

    expect([b?.bitmapTableOffsetHi, b?.bitmapTableOffsetLo, b?.bitmapTableOffset]).toEqual([1, 0, 4294967296]);
    expect(b?.bitmapTableSize).toBe(1);
    expect(b?.flags).toBe(12);
    expect([b?.inUse, b?.auto, b?.extraDataCompatible, b?.hasReservedFlags]).toEqual([false, false, true, true]);
    expect(b?.type).toBe(1);
    expect(b?.granularityBits).toBe(9);
    expect(Array.from(b?.extraData ?? [])).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(b?.name).toBe('two');
    expect(b?.padding.length).toBe(1);
    expect(b?.entrySize).toBe(32);
  });
});

describe('qcow2_bitmap_table', () => {
  it('parses bitmap table entries including the all-ones flag', () => {
    const t = parseBitmapTable(
      bytes(
        '00000000 00070000', // data cluster at 0x70000
        '00000000 00000000', // unallocated, reads as zeros
        '00000000 00000001', // unallocated, reads as ones
        'ff800000 000001fe', // reserved bits 56-63 and 1-8, offset bit 55
      ),
      4,
    );
    expect(t).toBeInstanceOf(Qcow2BitmapTable);
    const [a, b, c, d] = t.entries;
    expect([a?.offset, a?.allOnes, a?.isUnallocated]).toEqual([0x70000, false, false]);
    expect([b?.offset, b?.allOnes, b?.isUnallocated]).toEqual([0, false, true]);
    expect([c?.offset, c?.allOnes, c?.isUnallocated]).toEqual([0, true, true]);
    expect(d?.reservedHi).toBe(0xff);
    expect(d?.offsetHi).toBe(0x800000);
    expect(d?.offsetLo).toBe(0);
    expect(d?.reservedLo).toBe(0xff);
    expect(d?.allOnes).toBe(false);
    expect(d?.offset).toBe(36028797018963968); // 2^55
  });
});

// ---------------------------------------------------------------------------------------------
// LUKS1 partition header (full disk encryption header of a crypt_method 2 image)

describe('luks1_header', () => {
  // 592 bytes written field by field at the offsets of the LUKS1 on-disk format.
  function luksBuffer(): Uint8Array {
    const buf = new Uint8Array(592);
    const dv = new DataView(buf.buffer);
    const put = (at: number, s: string): void => buf.set(ascii(s), at);
    buf.set([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe], 0); // magic "LUKS\xba\xbe"
    dv.setUint16(6, 1); //                               version 1
    put(8, 'aes\0xyz'); //                               cipher_name: garbage after the NUL
    put(40, 'xts-plain64'); //                           cipher_mode
    put(72, 'abcdefghijklmnopqrstuvwxyz012345'); //      hash_spec: all 32 bytes, no NUL
    dv.setUint32(104, 4096); //                          payload_offset (sectors)
    dv.setUint32(108, 64); //                            key_bytes
    for (let i = 0; i < 20; i++) buf[112 + i] = 0x01 + i; // mk_digest 01..14
    for (let i = 0; i < 32; i++) buf[132 + i] = 0x20 + i; // mk_digest_salt 20..3f
    dv.setUint32(164, 123456); //                        mk_digest_iter
    put(168, '6f9619ff-8b86-d011-b42d-00c04fc964ff'); // uuid (36 chars, 4 NULs)
    // key slot 0 (208): enabled
    dv.setUint32(208, 0x00ac71f3);
    dv.setUint32(212, 2000000);
    for (let i = 0; i < 32; i++) buf[216 + i] = 0x80 + i;
    dv.setUint32(248, 8);
    dv.setUint32(252, 4000);
    // key slot 1 (256): disabled, all-ones iterations and key material offset
    dv.setUint32(256, 0x0000dead);
    dv.setUint32(260, 0xffffffff);
    buf.fill(0xff, 264, 296);
    dv.setUint32(296, 0xffffffff);
    dv.setUint32(300, 1);
    // key slots 2-6 (304, 352, 400, 448, 496): disabled, key material at 8 + n * 504 sectors
    for (let n = 2; n <= 6; n++) {
      const at = 208 + n * 48;
      dv.setUint32(at, 0x0000dead);
      dv.setUint32(at + 40, 8 + n * 504);
      dv.setUint32(at + 44, 4000);
    }
    // key slot 7 (544): neither enabled nor disabled
    dv.setUint32(544, 0x12345678);
    dv.setUint32(548, 7);
    buf[552] = 0xaa;
    buf[583] = 0x55;
    dv.setUint32(584, 3536);
    dv.setUint32(588, 4000);
    return buf;
  }

  it('parses every field of a 592-byte header', () => {
    const h = parseLuksHeader(luksBuffer());
    expect(h).toBeInstanceOf(Luks1Header);
    expect(Array.from(h.magic)).toEqual([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
    expect(h.version).toBe(1);
    expect(h.cipherName).toBe('aes');
    expect(h.cipherMode).toBe('xts-plain64');
    expect(h.hashSpec).toBe('abcdefghijklmnopqrstuvwxyz012345');
    expect(h.payloadOffset).toBe(4096);
    expect(h.payloadOffsetBytes).toBe(2097152);
    expect(h.keyBytes).toBe(64);
    expect(Array.from(h.mkDigest)).toEqual([
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
      0x13, 0x14,
    ]);
    expect(Array.from(h.mkDigestSalt)).toEqual(hex('202122232425262728292a2b2c2d2e2f 303132333435363738393a3b3c3d3e3f'));
    expect(h.mkDigestIter).toBe(123456);
    expect(h.uuid).toBe('6f9619ff-8b86-d011-b42d-00c04fc964ff');
    expect(h.keySlots).toHaveLength(8);
    expect(h._io.pos).toBe(592);

    const [s0, s1, ...rest] = h.keySlots;
    const s7 = rest[rest.length - 1];
    expect(s0).toBeInstanceOf(Luks1Header.KeySlot);
    expect(s0?.active).toBe(0x00ac71f3);
    expect(s0?.active).toBe(Luks1Header.KeySlotState.ENABLED);
    expect(s0?.isActive).toBe(true);
    expect(s0?.iterations).toBe(2000000);
    expect(Array.from(s0?.salt ?? [])).toEqual(hex('808182838485868788898a8b8c8d8e8f 909192939495969798999a9b9c9d9e9f'));
    expect(s0?.keyMaterialOffset).toBe(8);
    expect(s0?.keyMaterialOffsetBytes).toBe(4096);
    expect(s0?.stripes).toBe(4000);

    expect(s1?.active).toBe(0xdead);
    expect(s1?.active).toBe(Luks1Header.KeySlotState.DISABLED);
    expect(s1?.isActive).toBe(false);
    expect(s1?.iterations).toBe(4294967295);
    expect(Array.from(s1?.salt ?? [])).toEqual(zeros(32).map(() => 0xff));
    expect(s1?.keyMaterialOffset).toBe(4294967295);
    expect(s1?.keyMaterialOffsetBytes).toBe(2199023255040); // (2^32 - 1) * 512, exact
    expect(s1?.stripes).toBe(1);

    expect(rest.slice(0, 5).map((s) => [s.active, s.isActive, s.iterations, s.keyMaterialOffset, s.stripes])).toEqual([
      [0xdead, false, 0, 1016, 4000],
      [0xdead, false, 0, 1520, 4000],
      [0xdead, false, 0, 2024, 4000],
      [0xdead, false, 0, 2528, 4000],
      [0xdead, false, 0, 3032, 4000],
    ]);
    expect(rest.slice(0, 5).map((s) => s.keyMaterialOffsetBytes)).toEqual([520192, 778240, 1036288, 1294336, 1552384]);
    for (const s of rest.slice(0, 5)) expect(Array.from(s.salt)).toEqual(zeros(32));

    expect(s7?.active).toBe(0x12345678);
    expect(s7?.isActive).toBe(false);
    expect(s7?.iterations).toBe(7);
    expect(Array.from(s7?.salt ?? [])).toEqual([0xaa, ...zeros(30), 0x55]);
    expect(s7?.keyMaterialOffset).toBe(3536);
    expect(s7?.keyMaterialOffsetBytes).toBe(1810432);
    expect(s7?.stripes).toBe(4000);
  });

  it('rejects a bad magic and a truncated header', () => {
    for (const [at, value] of [
      [0, 0x6c], // "luks"
      [4, 0x00],
      [5, 0xbf],
    ] as const) {
      const bad = luksBuffer();
      bad[at] = value;
      expect(() => parseLuksHeader(bad)).toThrow();
    }
    expect(() => parseLuksHeader(luksBuffer().subarray(0, 591))).toThrow();
    expect(() => parseLuksHeader(new Uint8Array(0))).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// The typings in src/spec/generated/*.d.ts describe what the parsers return: walk parsed
// objects and check every declared member's run-time type against the declared type.

interface TypeModelEntry {
  params: { name: string; ts: string }[];
  members: { name: string; ts: string; kind: string }[];
}

describe('generated typings', () => {
  it('match the run-time types of parsed objects', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const url = pathToFileURL(join(root, 'scripts', 'gen-spec.mjs')).href;
    const gen = (await import(url)) as {
      generateWithModel(root: string): Promise<{ model: Map<string, TypeModelEntry> }>;
    };
    const { model } = await gen.generateWithModel(root);

    const tops: Record<string, unknown> = {
      Qcow2Header,
      Qcow2L1Table,
      Qcow2L2Table,
      Qcow2CompressedDescriptor,
      Qcow2RefcountTable,
      Qcow2RefcountBlock,
      Qcow2SnapshotTable,
      Qcow2BitmapDirectory,
      Qcow2BitmapTable,
      Luks1Header,
    };
    const classOf = (path: string): unknown => {
      let cur: unknown = undefined;
      for (const [i, part] of path.split('.').entries()) {
        cur = i === 0 ? tops[part] : (cur as Record<string, unknown>)[part];
        if (typeof cur !== 'function') throw new Error(`no class ${path}`);
      }
      return cur;
    };
    const byCtor = new Map<unknown, [string, TypeModelEntry]>();
    for (const [path, entry] of model) byCtor.set(classOf(path), [path, entry]);
    expect(byCtor.size).toBe(model.size);

    const seenTypes = new Set<string>();
    const errors: string[] = [];
    const matches = (value: unknown, ts: string): boolean =>
      ts.split(' | ').some((alt) => {
        if (alt === 'number') return typeof value === 'number' && Number.isFinite(value);
        if (alt === 'boolean') return typeof value === 'boolean';
        if (alt === 'string') return typeof value === 'string';
        if (alt === 'undefined') return value === undefined;
        if (alt === 'Uint8Array') return value instanceof Uint8Array;
        if (alt.endsWith('[]')) {
          const el = alt.slice(0, -2).replace(/^\((.*)\)$/, '$1');
          return Array.isArray(value) && value.every((v) => matches(v, el));
        }
        return value instanceof (classOf(alt) as new () => unknown);
      });
    const walk = (obj: object): void => {
      const info = byCtor.get(obj.constructor);
      if (!info) return;
      const [path, entry] = info;
      seenTypes.add(path);
      for (const m of [...entry.params, ...entry.members]) {
        const value = (obj as Record<string, unknown>)[m.name];
        if (!matches(value, m.ts)) errors.push(`${path}.${m.name}: declared ${m.ts}, got ${String(value)}`);
        for (const v of Array.isArray(value) ? value : [value]) {
          if (v && typeof v === 'object' && !(v instanceof Uint8Array)) walk(v as object);
        }
      }
    };

    // Re-parse the fixtures above (compact versions) and walk everything reachable.
    walk(parseHeader(bytes('514649fb 00000002', zeros(64), '00000000 00000000')));
    const v3 = bytes(
      '514649fb 00000003 00000000 00000200 00000004 00000010 00000000 00010000',
      zeros(40),
      '00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000070',
      '01 00000000000000',
      'e2792aca 00000003', ascii('raw'), '00000000 00',
      '6803f857 00000030 0000', ascii('dirty bit'), zeros(37),
      '23852875 00000018 00000001 00000000 00000000 00000020 00000000 00040000',
      '0537be77 00000010 00000000 00050000 00000000 00001000',
      '44415441 00000001', ascii('d'), '00000000 000000',
      '7777aaaa 00000000',
      '00000000 00000000',
      zeros(512 - 272),
      ascii('base'),
    );
    walk(parseHeader(v3));
    walk(
      parseL1Table(bytes('80000000 00050000 00000000 00000000'), 2),
    );
    walk(
      parseL2Table(bytes('80800000 00010001 40c00001 23456abc'), { extendedL2: false, clusterBits: 16, numEntries: 2 }),
    );
    walk(
      parseL2Table(bytes('80000000 00050000 0000ff00 000000ff 40400000 00001200 00000000 00000000'), {
        extendedL2: true,
        clusterBits: 16,
        numEntries: 2,
      }),
    );
    walk(parseCompressedDescriptor(bytes('7fff2345 6789abcd'), 21));
    walk(parseRefcountTable(bytes('00000000 00020000'), 1));
    for (let order = 0; order <= 6; order++) walk(parseRefcountBlock(bytes(zeros(16)), order, 2));
    walk(
      parseSnapshotTable(
        bytes(
          '00000000 00070000 00000014 0001 0001 00000000 00000000 00000000 00000000 00000000 00000018',
          '00000000 00000000 00000000 40000000 ffffffff ffffffff',
          ascii('1x'),
          '000000000000',
        ),
        1,
      ),
    );
    walk(
      parseBitmapDirectory(bytes('00000000 00060000 00000010 00000003 01 10 0001 00000000', ascii('b'), '00000000 000000'), 1),
    );
    walk(parseBitmapTable(bytes('00000000 00070000'), 1));
    walk(parseLuksHeader(bytes('4c554b53babe 0001', zeros(200), '00ac71f3', zeros(380))));

    expect(errors).toEqual([]);
    expect([...seenTypes].sort()).toEqual([...model.keys()].sort());
  });
});
