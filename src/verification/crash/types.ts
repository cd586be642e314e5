/**
 * The types the crash harness shares (workloads, their requests, what a crash state must hold), in
 * a file of their own so that the recorder (workload.ts), the requests (guest-ops.ts), the judge
 * (judge.ts) and error injection (faults.ts) import them without importing each other.
 */
import type { OpenOptions, Qcow2Device } from '../../engine/types.js';

export type GuestOp =
  | { op: 'write'; offset: number; length: number; seed: number }
  | { op: 'zero'; offset: number; length: number; unmap?: boolean }
  | { op: 'discard'; offset: number; length: number }
  /** One whole cluster, compressed (`seed` 0: compressible bytes). */
  | { op: 'compressed'; offset: number; seed: number }
  | { op: 'flush' }
  /** Grows the disk (the L1 table grows with it when it must), the new area preallocated as asked. */
  | { op: 'resize'; size: number; preallocation?: 'metadata' | 'falloc' | 'full' }
  | { op: 'snapshot'; name: string }
  | { op: 'delete-snapshot'; name: string };

/** A request, or the close that ends every workload. */
export type Step = GuestOp | { op: 'close' };

export interface Workload {
  name: string;
  /** `qemu-img create -f qcow2 -o OPTIONS image SIZE`. */
  options: string;
  size: number;
  clusterSize: number;
  /** Persistent bitmaps `qemu-img bitmap --add` gives the image first (granularity in bytes). */
  bitmaps?: WorkloadBitmap[];
  /** qemu-io commands run on the image before the workload (the image's history). */
  before?: string[];
  /** The external data file's name (beside the image), when `options` names one. */
  dataFile?: string;
  ops: GuestOp[];
}

export interface WorkloadBitmap {
  name: string;
  granularity?: number;
  /** `qemu-img bitmap --disable`: it records nothing. */
  disabled?: boolean;
}

/** How the harness opens an image on an engine (an engine lane's `open`: src/verification/engines.ts). */
export type Open = (path: string, opts: OpenOptions) => Promise<Qcow2Device>;

/** What a crash state must read back. */
export interface Expectation {
  /** The guest's bytes as of the last returned flush. */
  bytes: Uint8Array;
  /** Ranges written since (or by failed requests): they may read either way. */
  unsettled: [number, number][];
  /** Virtual sizes the disk may have (a resize since the flush may or may not have landed). */
  sizes?: number[];
  /** The image's bitmaps: none may vanish, and an enabled one stored clean (not in_use) must hold all of `touched` dirty. */
  bitmaps?: WorkloadBitmap[];
  /** Ranges of every request begun before the crash. */
  touched?: [number, number][];
}
