/** The sliced table cache under a budget smaller than its dirty slices. */
import { describe, expect, it } from 'vitest';
import { MemoryFile } from '../../src/io/memory-file.js';
import { geometry } from '../../src/format/geometry.js';
import { defaultL2CacheBytes } from '../../src/optimized/open.js';
import { TableCache } from '../../src/optimized/table-cache.js';

describe('TableCache', () => {
  it('serves a new slice when every cached slice is dirty (it used to evict it at once and load it for ever)', async () => {
    // Reads yield to the event loop, so a regression loops without starving the test's timeout.
    const file = new (class extends MemoryFile {
      override async readInto(offset: number, target: Uint8Array): Promise<number> {
        await new Promise<void>((r) => setImmediate(r));
        return super.readInto(offset, target);
      }
    })(new Uint8Array(8 * 512).fill(7));
    const cache = new TableCache('l2', file, 512, 1024, 'l2'); // room for 2 slices
    for (const offset of [0, 512]) {
      await cache.use(offset, (bytes) => {
        bytes[0] = 1;
        cache.markDirty(offset, bytes);
      });
    }
    const third = await cache.use(1024, (bytes) => bytes[0]);
    expect(third).toBe(7);
    expect(cache.size).toBe(3); // over budget until the next trim writes the dirty ones back
    await cache.trim();
    expect(cache.size).toBe(2);
    expect((await file.read(0, 1))[0]).toBe(1);
  }, 5000);
});

describe('default L2 cache budget (QEMU: the tables that map the disk, at most 32 MiB, at least 2 clusters)', () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const GiB = 1024 * MiB;
  it.each([
    // [cluster bits, extended L2, virtual size, bytes] — by hand: one L2 table maps clusterSize / entry bytes clusters.
    [16, false, 64 * GiB, 128 * 64 * KiB], // 512 MiB per table: 128 tables
    [16, false, 1024 * GiB, 32 * MiB], // 2048 tables = 128 MiB, capped
    [16, false, 16 * MiB, 2 * 64 * KiB], // one table, raised to two clusters
    [16, true, 64 * GiB, 256 * 64 * KiB], // 16-byte entries: 256 MiB per table
    [21, false, 4096 * GiB, 8 * 2 * MiB], // 2 MiB clusters: 262144 entries, 512 GiB per table: 8 tables
    [12, false, 10 * GiB, 20 * MiB], // 4 KiB clusters map 2 MiB per table: 5120 tables of 4 KiB
  ] as const)('cluster_bits %i, extended L2 %s, %i bytes: %i', (bits, ext, size, bytes) => {
    expect(defaultL2CacheBytes(geometry(bits, ext, 4, size))).toBe(bytes);
  });
});
