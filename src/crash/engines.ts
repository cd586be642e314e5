/** The engines crash workloads run on: the reference, and the optimized engine with default and tiny caches. */
import { openOptimized } from '../optimized/open.js';
import { openReference } from '../reference/open.js';
import type { Open } from './workload.js';

export const CRASH_ENGINES: Record<string, Open> = {
  reference: (path, opts) => openReference(path, opts),
  optimized: (path, opts) => openOptimized(path, { ...opts, compressionThreads: 0 }),
  // Tiny caches: L2 tables and refcount blocks are evicted, so written back, in the middle of requests.
  'optimized-tiny-caches': (path, opts) => openOptimized(path, { ...opts, compressionThreads: 0, l2CacheBytes: 1024, refcountCacheBytes: 1024 }),
};
