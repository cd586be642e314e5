// Child process of test/interop/bounded-memory.test.ts: opens IMAGE with the optimized engine
// (default caches unless L2_BYTES is given), reads COUNT random 4 KiB blocks spread over the whole
// disk, and prints JSON: the resident set at the end (after garbage has been collected and its
// buffers freed) and at its peak, and the cache's occupancy. Run with --expose-gc.
//   node --expose-gc test/support/memory-probe.mjs IMAGE COUNT [L2_BYTES]
import { openOptimized } from '../../dist/optimized/open.js';

const [image, countText, l2Text] = process.argv.slice(2);
const count = Number(countText);
// Buffers of collected objects are freed a little after the collection: wait, and collect again.
const settle = async () => {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 100));
  globalThis.gc();
  return process.memoryUsage().rss;
};
const dev = await openOptimized(image, { readOnly: true, ...(l2Text ? { l2CacheBytes: Number(l2Text) } : {}) });
const buf = new Uint8Array(4096);
// Warm up code paths and allocator pools before the baseline.
for (let i = 0; i < 200; i++) await dev.readInto((i * 4096 * 7919) % dev.virtualSize, buf);
let x = 12345;
let peak = 0;
for (let i = 0; i < count; i++) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  const block = (x * 65536 + i) % Math.floor(dev.virtualSize / 4096);
  await dev.readInto(block * 4096, buf);
  if (i % 2000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
}
const after = await settle();
const l2 = dev.state.l2Cache;
process.stdout.write(
  JSON.stringify({
    rss: after,
    peak: Math.max(peak, after),
    l2Slices: l2.size,
    l2Capacity: l2.capacity,
    sliceBytes: l2.sliceBytes,
    misses: l2.stats.misses,
  }) + '\n',
);
await dev.close();
