/**
 * The one rule for host offsets read from image metadata (L1, L2 and refcount table entries,
 * compressed descriptors, snapshot and bitmap tables): before any I/O, the bytes
 * [offset, offset + length) must lie within [0, MAX_HOST_OFFSET] (src/limits.ts). The spec lets an
 * entry name offsets up to 2^56, which no file here can hold and no Node file call accepts; such an
 * entry is corruption, reported with the entry's place, not an error of the file system.
 */
import { corrupt, hex } from '../errors.js';
import { MAX_HOST_OFFSET } from '../limits.js';

/** Whether host bytes [offset, offset + length) can be addressed at all. */
export function hostRangeFits(offset: number, length: number): boolean {
  return Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0 && offset + length <= MAX_HOST_OFFSET;
}

/** Why [offset, offset + length) cannot be addressed, for a message (see hostRangeFits). */
export function hostRangeProblem(offset: number, length: number): string {
  return `host range ${hex(offset)} + ${hex(length)} lies beyond 2^53 - 1, the largest file offset we address`;
}

/**
 * Returns `offset` when [offset, offset + length) fits, else throws a `corrupt` error naming the
 * metadata entry (`what`, at file offset `entryAt`) that holds it.
 */
export function checkHostRange(offset: number, length: number, what: string, entryAt: number): number {
  if (hostRangeFits(offset, length)) return offset;
  throw corrupt(`${what}: ${hostRangeProblem(offset, length)}`, { offset: entryAt });
}
