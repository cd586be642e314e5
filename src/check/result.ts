/**
 * What one check pass finds, counted as QEMU's BdrvCheckResult counts it: corruptions (a cluster
 * referenced more often than its refcount says, or a malformed entry), leaks (a refcount higher
 * than the references), check errors (the check itself could not read or write something), the
 * repairs made, and the allocation figures qemu-img prints.
 */
import type { Qcow2Error } from '../errors.js';

export interface CheckCounts {
  checkErrors: number;
  corruptions: number;
  leaks: number;
  corruptionsFixed: number;
  leaksFixed: number;
  /** Bytes up to the end of the last cluster that is referenced or has a refcount. */
  imageEndOffset: number;
  /** Guest clusters: ceil(virtual size / cluster size). */
  totalClusters: number;
  /** Clusters the active L1 tree maps to host clusters (normal, preallocated zero, compressed). */
  allocatedClusters: number;
  /** Of those, clusters not following the previous one of their L2 table on the host, and every compressed one. */
  fragmentedClusters: number;
  compressedClusters: number;
}

export interface CheckReport extends CheckCounts {
  /** One line per finding or repair, in QEMU's wording where QEMU has one (qemu-img prints them on stderr). */
  messages: string[];
  /**
   * Set when the check had to stop (QEMU's "Check failed"): e.g. `-r leaks` on an image whose
   * refcount structure must be rebuilt. The counts are then incomplete.
   */
  failure?: Qcow2Error;
}

export type RepairMode = 'leaks' | 'all';

export function emptyCounts(): CheckCounts {
  return {
    checkErrors: 0,
    corruptions: 0,
    leaks: 0,
    corruptionsFixed: 0,
    leaksFixed: 0,
    imageEndOffset: 0,
    totalClusters: 0,
    allocatedClusters: 0,
    fragmentedClusters: 0,
    compressedClusters: 0,
  };
}

/** The repairs a mode allows: leaks only, or leaks and errors (QEMU's BDRV_FIX_LEAKS / BDRV_FIX_ERRORS). */
export interface FixMode {
  leaks: boolean;
  errors: boolean;
}

export function fixMode(repair: RepairMode | undefined): FixMode {
  return { leaks: repair !== undefined, errors: repair === 'all' };
}

export const NO_FIX: FixMode = { leaks: false, errors: false };

export function anyFix(fix: FixMode): boolean {
  return fix.leaks || fix.errors;
}
