/** The sliced table cache under a budget smaller than its dirty slices. */
import { describe, expect, it } from 'vitest';
import { MemoryFile } from '../../src/io/memory-file.js';
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
