/**
 * The layout `createImage` reproduces, checked on its own (the byte-for-byte comparison with
 * qemu-img is test/interop/create-parity.test.ts): offsets QEMU 7.2 uses, read back through our
 * metadata reader from an in-memory file.
 */
import { describe, expect, it } from 'vitest';
import { writePlan } from '../../src/create/create.js';
import { planImage } from '../../src/create/layout.js';
import { QEMU_FEATURE_TABLE } from '../../src/format/extensions.js';
import { type CreateOptions, validateCreateOptions } from '../../src/create/options.js';
import { view } from '../../src/format/bytes.js';
import { decodeL2Entry, decodeStandardDescriptor } from '../../src/format/l2.js';
import { readRefcount } from '../../src/format/refcount.js';
import { readMetadata } from '../../src/image/metadata.js';
import { MemoryFile } from '../../src/io/memory-file.js';

async function build(o: CreateOptions) {
  const plan = planImage(validateCreateOptions(o));
  const file = new MemoryFile();
  await writePlan(file, plan);
  return { plan, bytes: file.snapshot(), meta: await readMetadata(file) };
}

const G = 1n << 30n;

describe('createImage layout', () => {
  it('default 1 GiB: header, refcount table, refcount block, then a 16-byte L1 table', async () => {
    const { plan, bytes, meta } = await build({ size: G });
    expect(meta.header).toMatchObject({
      version: 3,
      clusterBits: 16,
      size: G,
      l1Size: 2,
      l1TableOffset: 0x30000n,
      refcountTableOffset: 0x10000n,
      refcountTableClusters: 1,
      refcountOrder: 4,
      headerLength: 112,
      incompatibleFeatures: 0n,
    });
    expect(plan.fileLength).toBe(0x30010);
    expect(bytes.byteLength).toBe(0x30010);
    expect(meta.featureTable).toEqual(QEMU_FEATURE_TABLE);
    expect(view(bytes).getBigUint64(0x10000)).toBe(0x20000n);
    const block = bytes.subarray(0x20000, 0x30000);
    expect([0, 1, 2, 3, 4].map((i) => readRefcount(block, i, 4))).toEqual([1, 1, 1, 1, 0]);
  });

  it('size 0: no L1 table at all', async () => {
    const { plan, meta } = await build({ size: 0 });
    expect(meta.header.l1Size).toBe(0);
    expect(meta.header.l1TableOffset).toBe(0n);
    expect(plan.fileLength).toBe(3 * 65536);
  });

  it('no feature table with clusters of 4 KiB or less, nor in v2 headers', async () => {
    expect((await build({ size: G, clusterSize: 4096 })).meta.featureTable).toEqual([]);
    const v2 = await build({ size: G, version: 2 });
    expect(v2.meta.header.version).toBe(2);
    expect(v2.meta.featureTable).toEqual([]);
  });

  it('feature bits, compression type byte and refcount order', async () => {
    const { meta } = await build({ size: G, dataFile: 'd.raw', dataFileRaw: true, compressionType: 'zstd', extendedL2: true, lazyRefcounts: true, refcountBits: 8 });
    expect(meta.header.incompatibleFeatures).toBe(0b11100n);
    expect(meta.header.compatibleFeatures).toBe(1n);
    expect(meta.header.autoclearFeatures).toBe(2n);
    expect(meta.header.compressionType).toBe(1);
    expect(meta.header.refcountOrder).toBe(3);
    expect(meta.dataFile).toBe('d.raw');
  });

  it('backing format extension first, the name as given right after the end marker', async () => {
    const { bytes, meta } = await build({ size: G, backingFile: '../base.qcow2', backingFormat: 'qcow2', dataFile: 'd.raw' });
    expect(meta.backingFile).toBe('../base.qcow2');
    expect(meta.backingFormat).toBe('qcow2');
    expect(meta.extensions.map((e) => e.kind)).toEqual(['backing-format', 'data-file', 'feature-table']);
    // 112 + (8+8) + (8+8) + (8+384) + 8 end marker
    expect(meta.header.backingFileOffset).toBe(544n);
    expect(new TextDecoder().decode(bytes.subarray(544, 544 + 13))).toBe('../base.qcow2');
  });

  it('preallocation=metadata: L2 table, then data clusters, entries offset|COPIED, file covers the data', async () => {
    const { plan, bytes } = await build({ size: 1048576, preallocation: 'metadata' });
    expect(plan.fileLength).toBe(21 * 65536);
    const l2 = bytes.subarray(0x40000, 0x50000);
    for (let i = 0; i < 16; i++) {
      const e = decodeL2Entry(view(l2), i * 8, false);
      expect(e.copied).toBe(true);
      expect(decodeStandardDescriptor(e)).toMatchObject({ zero: false, hostOffset: 0x50000 + i * 65536 });
    }
    expect(decodeL2Entry(view(l2), 16 * 8, false)).toMatchObject({ copied: false, descriptorHi: 0, descriptorLo: 0 });
  });

  it('preallocation of a partial last cluster reaches the end of the (sub)cluster', async () => {
    expect((await build({ size: 1048576 + 512, preallocation: 'metadata' })).plan.fileLength).toBe(22 * 65536);
    expect((await build({ size: 1048576 + 512, preallocation: 'metadata', extendedL2: true })).plan.fileLength).toBe(21 * 65536 + 2048);
  });

  it('external data file: its length is the size, or whole (sub)clusters when preallocated', async () => {
    expect((await build({ size: 1000, dataFile: 'd' })).plan.dataFileLength).toBe(1024);
    expect((await build({ size: 1000, dataFile: 'd', dataFileRaw: true })).plan.dataFileLength).toBe(65536);
    const raw = await build({ size: 1048576, dataFile: 'd', dataFileRaw: true });
    // data_file_raw: the L2 entries map guest offset n to data file offset n (offset 0 included).
    const l2 = raw.bytes.subarray(0x40000, 0x50000);
    expect(decodeStandardDescriptor(decodeL2Entry(view(l2), 0, false)).hostOffset).toBe(0);
    expect(decodeL2Entry(view(l2), 0, false).copied).toBe(true);
    expect(decodeStandardDescriptor(decodeL2Entry(view(l2), 15 * 8, false)).hostOffset).toBe(15 * 65536);
  });

  it('grows the refcount table as QEMU does (512-byte clusters, 64-bit refcounts)', async () => {
    const { meta, plan } = await build({ size: 8n << 20n, clusterSize: 512, refcountBits: 64, preallocation: 'metadata' });
    expect(meta.header.refcountTableOffset).not.toBe(512n);
    expect(meta.header.refcountTableClusters).toBeGreaterThan(1);
    expect(plan.fileLength).toBeGreaterThan(8 << 20);
  });
});
