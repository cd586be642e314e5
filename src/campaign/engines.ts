/** The engines a campaign can run, as lanes (src/campaign/system.ts). */
import { JitterFile } from '../io/jitter-file.js';
import { openOptimized } from '../optimized/open.js';
import { openReference } from '../reference/open.js';
import type { Engine } from './system.js';

/** The executable specification: requests one at a time. */
export const REFERENCE: Engine = { name: 'reference', open: (p) => openReference(p), concurrent: false };

let opens = 0;

/**
 * The optimized engine with tiny caches, so eviction and write-back ordering happen all the time,
 * over a file that delays each I/O by a few event-loop turns, so that the requests of a batch
 * interleave at every await.
 */
export const OPTIMIZED: Engine = {
  name: 'optimized',
  open: (p) => openOptimized(p, { l2CacheBytes: 4096, refcountCacheBytes: 2048, wrapFile: (f) => new JitterFile(f, ++opens) }),
  concurrent: true,
};
