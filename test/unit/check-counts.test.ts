/**
 * The checker on synthetic images in memory (test/support/tiny-image.ts, written field by field from
 * the spec), with every expected number worked out by hand in the comments. 64 KiB clusters, 16-bit
 * refcounts, 1 GiB virtual size: total-clusters = 2^30 / 2^16 = 16384.
 */
import { describe, expect, it } from 'vitest';
import { checkAndRepair, checkImage } from '../../src/check/index.js';
import type { WriteTag } from '../../src/io/block-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { TINY, tinyImage } from '../support/tiny-image.js';

const C = TINY.clusterSize;
const COPIED = 1n << 63n;

class WatchedFile extends MemoryFile {
  writes: Array<{ offset: number; length: number; tag: WriteTag | undefined }> = [];
  flushes = 0;
  override async write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void> {
    this.writes.push({ offset, length: data.byteLength, tag });
    await super.write(offset, data);
  }
  override async flush(): Promise<void> {
    this.flushes++;
    await super.flush();
  }
}

/**
 * The tiny image plus an L2 table at cluster 4 (L1[0]) mapping
 *   guest 0 -> cluster 5, guest 1 -> cluster 6 (contiguous), guest 3 -> cluster 8 (not after 6:
 *   fragmented), guest 4 -> compressed at 0x70064 with 1 additional sector, i.e. bytes
 *   0x70064 .. 0x703ff, all inside cluster 7.
 * Refcounts of clusters 0-8 are 1; the file is 9 clusters long.
 */
function mappedImage(clusters = 9): Uint8Array {
  const bytes = new Uint8Array(clusters * C);
  bytes.set(tinyImage());
  const dv = new DataView(bytes.buffer);
  dv.setBigUint64(TINY.l1TableOffset, COPIED | 0x40000n);
  const l2 = 0x40000;
  dv.setBigUint64(l2 + 0 * 8, COPIED | 0x50000n);
  dv.setBigUint64(l2 + 1 * 8, COPIED | 0x60000n);
  dv.setBigUint64(l2 + 3 * 8, COPIED | 0x80000n);
  // Compressed: bit 62, x = 62 - (16 - 8) = 54 offset bits, additional sectors from bit 54.
  dv.setBigUint64(l2 + 4 * 8, (1n << 62n) | (1n << 54n) | 0x70064n);
  for (let k = 0; k < 9; k++) dv.setUint16(TINY.refcountBlockOffset + 2 * k, 1);
  return bytes;
}

describe('checkImage counts', () => {
  it('the tiny image is clean: end offset 4 clusters, nothing allocated, nothing written', async () => {
    const file = new WatchedFile(tinyImage());
    const r = await checkImage(file);
    expect(r).toMatchObject({ corruptions: 0, leaks: 0, checkErrors: 0, imageEndOffset: 4 * C, totalClusters: 16384, allocatedClusters: 0 });
    expect(file.writes).toEqual([]);
  });

  it('allocation figures: 4 allocated, 2 fragmented (one jump + the compressed one), 1 compressed', async () => {
    const r = await checkImage(new MemoryFile(mappedImage()));
    expect(r).toMatchObject({
      corruptions: 0,
      leaks: 0,
      imageEndOffset: 9 * C,
      allocatedClusters: 4,
      fragmentedClusters: 2,
      compressedClusters: 1,
    });
  });

  it('a cluster with refcount 1 and no reference is one leak; -r leaks frees it with a tagged write', async () => {
    const bytes = mappedImage(10);
    new DataView(bytes.buffer).setUint16(TINY.refcountBlockOffset + 2 * 9, 1);
    const file = new WatchedFile(bytes);
    expect(await checkImage(file)).toMatchObject({ leaks: 1, corruptions: 0, imageEndOffset: 10 * C });
    expect(file.writes).toEqual([]);

    const { first, final } = await checkAndRepair(file, { repair: 'leaks' });
    expect(first).toMatchObject({ leaksFixed: 1, leaks: 0 });
    expect(final).toMatchObject({ leaks: 0, corruptions: 0, leaksFixed: 1, imageEndOffset: 9 * C });
    expect(file.writes).toEqual([{ offset: TINY.refcountBlockOffset, length: C, tag: 'refcount-block' }]);
    expect(file.flushes).toBeGreaterThan(0);
    const stored = new DataView((await file.read(TINY.refcountBlockOffset + 18, 2)).buffer).getUint16(0);
    expect(stored).toBe(0);
  });

  it('a cluster referenced twice with refcount 1: one refcount error, two COPIED errors, all fixed by -r all', async () => {
    // Guest 5 also maps cluster 5, with COPIED (right for refcount 1, wrong once it is 2).
    const bytes = mappedImage();
    new DataView(bytes.buffer).setBigUint64(0x40000 + 5 * 8, COPIED | 0x50000n);
    const file = new WatchedFile(bytes);
    // Refcount 1 < 2 references: 1 corruption. COPIED: both entries say "refcount 1", which holds
    // (the stored refcount is still 1): no COPIED error yet.
    expect(await checkImage(file)).toMatchObject({ corruptions: 1, leaks: 0 });
    // -r all: the refcount becomes 2 (1 fixed); then both entries' COPIED flags are wrong (2 fixed).
    const { first, final } = await checkAndRepair(file, { repair: 'all' });
    expect(first).toMatchObject({ corruptionsFixed: 3, corruptions: 0 });
    expect(final).toMatchObject({ corruptions: 0, leaks: 0, corruptionsFixed: 3 });
    expect(file.writes.map((w) => w.tag).sort()).toEqual(['l2', 'refcount-block']);
  });
});

describe('checkImage on hostile references stays bounded', () => {
  it('an L2 table at 2^55 is one corruption (past the end by far), not a huge allocation', async () => {
    const bytes = tinyImage();
    new DataView(bytes.buffer).setBigUint64(TINY.l1TableOffset, COPIED | (1n << 55n));
    const r = await checkImage(new MemoryFile(bytes));
    // References beyond the end are counted as corruptions; its COPIED flag is checked against
    // the refcount of a cluster no refcount block covers (0): a second corruption.
    expect(r).toMatchObject({ corruptions: 2, leaks: 0, checkErrors: 0, imageEndOffset: 4 * C });
  });

  it('a compressed descriptor whose offset has bits above 2^53 is a corruption', async () => {
    const bytes = mappedImage();
    // Offset bits 53 (above what a file can hold): the 54-bit offset field's top bit.
    new DataView(bytes.buffer).setBigUint64(0x40000 + 4 * 8, (1n << 62n) | (1n << 53n) | 0x70064n);
    const r = await checkImage(new MemoryFile(bytes));
    // Cluster 7 loses its only reference: also a leak.
    expect(r).toMatchObject({ corruptions: 1, leaks: 1, compressedClusters: 1 });
  });

  it('a file that is not qcow2 is a typed error', async () => {
    await expect(checkImage(new MemoryFile(new Uint8Array(1024)))).rejects.toMatchObject({ name: 'Qcow2Error' });
  });
});

describe("qemu-img's percentages", () => {
  it('print like C\'s %.2f: the exact binary value, ties to even', async () => {
    const { printfFixed2 } = await import('../../src/check/output.js');
    // 3.125 and 0.78125 are exact in binary: ties, so to even (glibc printf prints 3.12, 0.78).
    expect(printfFixed2(3.125)).toBe('3.12');
    expect(printfFixed2(0.78125)).toBe('0.78');
    expect(printfFixed2(0.375)).toBe('0.38');
    expect(printfFixed2(12.5)).toBe('12.50');
    expect(printfFixed2(100)).toBe('100.00');
    expect(printfFixed2(99.995)).toBe('100.00'); // the double is just above 99.995
    expect(printfFixed2(2.675)).toBe('2.67'); // the double is just below 2.675
    expect(printfFixed2(0)).toBe('0.00');
  });
});
