/**
 * The optimized engine's state. The header, the active L1 table and the refcount table are held in
 * memory (bounded by QEMU's limits: L1 at most 32 MiB, refcount table at most 8 MiB; for a 1 TiB
 * image with 64 KiB clusters that is 16 KiB and a few KiB); L2 tables and refcount blocks live in
 * the two bounded caches.
 */
import type { Codec } from '../compress/codec.js';
import type { BarrierFile } from '../io/barrier-file.js';
import type { Qcow2State } from '../qcow2/state.js';
import type { FlushOrder } from './flush-order.js';
import type { Mutex } from './mutex.js';
import type { TableCache } from './table-cache.js';

export interface OptState extends Qcow2State {
  /** The image file and the external data file, behind barriers (flush-order.ts). */
  file: BarrierFile;
  dataFile: BarrierFile | undefined;
  /** Active L1: L2 table offsets (0 = none) and COPIED flags. */
  l1Offsets: number[];
  l1Copied: boolean[];
  /** Refcount table: block offsets (0 = none, -1 = an invalid entry, refused when used). */
  refcountTable: number[];
  l2Cache: TableCache;
  refcountCache: TableCache;
  order: FlushOrder;
  /** Serialises every metadata change (allocation, L2/refcount updates, write-backs). */
  meta: Mutex;
  /**
   * The end of the image file as far as the engine knows: its size at open, raised by every
   * allocation. A data cluster at or past it is corruption (entries.ts).
   */
  fileEnd: number;
  /** Metadata clusters by index, for the overlap check (overlap.ts); rebuilt after changes. */
  metadataMap: Map<number, string> | undefined;
  /** Where the next compressed cluster may be packed (0: start a fresh host cluster). */
  compressedCursor: number;
  /** Where compressed clusters are inflated and deflated (a worker pool, or inline). */
  codec: Codec;
}
