/**
 * The engines under test, as lanes: every suite that runs "each engine" (the model-based campaign,
 * crash states, error injection, the dirty bit, reads against QEMU) takes its lanes from LANES, by
 * the suites a lane names. A new lane (an NBD or ublk device, say) joins those suites by adding one
 * entry here.
 */
import type { OpenOptions, Qcow2Device } from '../engine/types.js';
import { JitterFile } from '../io/jitter-file.js';
import { openOptimized } from '../optimized/open.js';
import { openNbdLane } from './nbd-lane.js';
import { openReference } from '../reference/open.js';
import { openUblkLane } from './ublk-lane.js';

/**
 * The suites a lane runs in:
 *  - `campaign`: the model-based campaign (test/property, `qcow2 verify`); all its lanes run the
 *    same commands side by side and must agree;
 *  - `crash-states`: every crash state of every crash workload (test/crash, `qcow2 verify`'s sample);
 *  - `error-injection`: EIO and ENOSPC at every kind of write (test/crash/error-injection.test.ts);
 *  - `dirty-bit`: the dirty bit as the engine keeps it (test/crash/dirty-bit.test.ts);
 *  - `reads`: reads every corpus image as qemu-img does (test/interop, `qcow2 verify`);
 *  - `nbd-campaign`: the model-based campaign again, its lanes side by side with the reference
 *    (test/property/nbd.property.test.ts): lanes behind a real server and client, slower to start,
 *    so run for fewer sequences than `campaign`;
 *  - `ublk-campaign`: the model-based campaign again, its lanes side by side with the reference,
 *    inside the 6.12 VM (test/ublk/campaign.test.ts): lanes behind a Linux block device, which
 *    need ublk_drv and root.
 */
export type Suite = 'campaign' | 'crash-states' | 'error-injection' | 'dirty-bit' | 'reads' | 'nbd-campaign' | 'ublk-campaign';

/**
 * Opens an image on a lane. `opts` are the suite's (read-only, no flush, a recording or fault
 * layer, compression threads); the lane adds its own variant (cache sizes, a jitter layer).
 */
export type LaneOpen = (path: string, opts?: OpenOptions) => Promise<Qcow2Device>;

export interface EngineLane {
  /** Unique: names the lane in test names, campaign messages and `qcow2 verify`'s output. */
  readonly name: string;
  /** The engine behind the lane. */
  readonly engine: 'reference' | 'optimized';
  /** The cache variant: none (the reference), the engine's defaults, or tiny (evicted all the time). */
  readonly caches: 'none' | 'default' | 'tiny';
  /** Whether the lane takes overlapping requests at once (campaign batches run with Promise.all on it). */
  readonly concurrent: boolean;
  /**
   * Whether the lane opens LUKS-encrypted images (their passphrase given as OpenOptions.keySecret);
   * the campaign draws encrypted shapes only when every lane does.
   */
  readonly luks: boolean;
  /** The suites it runs in. */
  readonly suites: readonly Suite[];
  readonly open: LaneOpen;
}

let jitterOpens = 0;

export const LANES: readonly EngineLane[] = [
  {
    // The executable specification: requests one at a time, write-through, no caches.
    name: 'reference',
    engine: 'reference',
    caches: 'none',
    concurrent: false,
    luks: true,
    suites: ['campaign', 'crash-states', 'error-injection', 'dirty-bit', 'reads'],
    open: (path, opts = {}) => openReference(path, opts),
  },
  {
    name: 'optimized',
    engine: 'optimized',
    caches: 'default',
    concurrent: true,
    luks: true,
    suites: ['crash-states', 'error-injection', 'dirty-bit', 'reads'],
    open: (path, opts = {}) => openOptimized(path, opts),
  },
  {
    // L2 tables and refcount blocks are evicted, so written back, in the middle of requests.
    name: 'optimized-tiny-caches',
    engine: 'optimized',
    caches: 'tiny',
    concurrent: true,
    luks: true,
    suites: ['crash-states'],
    open: (path, opts = {}) => openOptimized(path, { ...opts, l2CacheBytes: 1024, refcountCacheBytes: 1024 }),
  },
  {
    // Tiny caches, so eviction and write-back ordering happen all the time, over a file that delays
    // each I/O by a few event-loop turns, so that the requests of a campaign batch interleave at
    // every await.
    name: 'optimized-jitter',
    engine: 'optimized',
    caches: 'tiny',
    concurrent: true,
    luks: true,
    suites: ['campaign'],
    open: (path, opts = {}) =>
      openOptimized(path, {
        ...opts,
        l2CacheBytes: 4096,
        refcountCacheBytes: 2048,
        wrapFile: (f, role) => new JitterFile(opts.wrapFile ? opts.wrapFile(f, role) : f, ++jitterOpens),
      }),
  },
  {
    // The optimized engine behind `qcow2 nbd` (a process of its own), driven over a unix socket by
    // libnbd; what NBD cannot say (snapshots, resize, compressed writes, mappings) is done with the
    // server stopped (src/verification/nbd-lane.ts).
    name: 'nbd',
    engine: 'optimized',
    caches: 'default',
    concurrent: false,
    luks: false,
    suites: ['nbd-campaign'],
    open: (path, opts = {}) => openNbdLane(path, opts),
  },
  {
    // The optimized engine behind `qcow2 ublk add --foreground` (a process of its own), driven
    // through /dev/ublkbN with O_DIRECT; what a block device cannot say (snapshots, resize,
    // compressed writes, mappings, zeroing part of a sector-sized (sub)cluster) is done with the
    // device deleted (src/verification/ublk-lane.ts).
    name: 'ublk',
    engine: 'optimized',
    caches: 'default',
    concurrent: false,
    luks: false,
    suites: ['ublk-campaign'],
    open: (path, opts = {}) => openUblkLane(path, opts),
  },
];

/** The lanes of one suite, in LANES order. */
export function lanesFor(suite: Suite): EngineLane[] {
  return LANES.filter((l) => l.suites.includes(suite));
}

/** One lane by name (a test about one engine in particular). */
export function lane(name: string): EngineLane {
  const found = LANES.find((l) => l.name === name);
  if (!found) throw new Error(`no engine lane named '${name}' (lanes: ${LANES.map((l) => l.name).join(', ')})`);
  return found;
}
