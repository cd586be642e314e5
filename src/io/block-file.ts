/**
 * All image I/O goes through this interface: the node file backend, the in-memory backend and the
 * wrappers (forwarding-file.ts and its subclasses) implement all of it, so every engine and test
 * can swap them.
 */
import { usage } from '../errors.js';
import { ZERO_CHUNK_BYTES } from '../limits.js';

/** Names the metadata write a write belongs to, so faults can be injected at exactly that write. */
export type WriteTag =
  | 'data'
  | 'header'
  | 'l1'
  | 'l2'
  | 'refcount-block'
  | 'refcount-table'
  | 'snapshot-table'
  | 'bitmap'
  | 'cow';

/**
 * What a file does for real rather than by writing zeros. punchHole() and zeroRange() work on every
 * BlockFile; these say whether they free blocks / skip writing data, or fall back to writeZeros().
 * A file may turn a capability off when the file system first refuses it (NodeFile does).
 */
export interface FileCapabilities {
  /** punchHole() deallocates (fallocate PUNCH_HOLE | KEEP_SIZE, or an in-memory equivalent). */
  readonly punchHole: boolean;
  /** zeroRange() zeroes without writing data (fallocate ZERO_RANGE, or an in-memory equivalent). */
  readonly zeroRange: boolean;
}

export interface BlockFile {
  /** Reads up to `length` bytes at `offset`; the result is shorter only at end of file. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads into `target` (all of it, or up to end of file) and returns the number of bytes read;
   * bytes of `target` past that count are left as they were. No buffer is allocated.
   */
  readInto(offset: number, target: Uint8Array): Promise<number>;
  write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void>;
  /**
   * Makes `length` bytes at `offset` read as zeros, freeing their blocks where the file can, and
   * never changes the file's size: the part past the end of the file is left alone (qemu's
   * discard / unmapping write-zeroes on a file: fallocate PUNCH_HOLE | KEEP_SIZE). Where the file
   * cannot (capabilities.punchHole false) it writes zeros over the part inside the file. `tag`: as
   * for write(); wrappers treat it as a write of zeros with that tag ('data' by default).
   */
  punchHole(offset: number, length: number, tag?: WriteTag): Promise<void>;
  /**
   * Makes `length` bytes at `offset` read as zeros, extending the file like a write when the range
   * ends past it (fallocate ZERO_RANGE); else (capabilities.zeroRange false) writes zeros.
   * Wrappers treat it as a write of zeros with `tag`.
   */
  zeroRange(offset: number, length: number, tag?: WriteTag): Promise<void>;
  size(): Promise<number>;
  truncate(length: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly readOnly: boolean;
  readonly capabilities: FileCapabilities;
}

/** How messages name punchHole() and zeroRange(). */
export const ZEROING_NAMES: Readonly<Record<keyof FileCapabilities, string>> = { punchHole: 'hole punch', zeroRange: 'zero range' };


/**
 * The one fallback for punchHole() and zeroRange() on a file that cannot do them for real: writes
 * zeros, in chunks of at most ZERO_CHUNK_BYTES bytes, over the range; for a punch only over its part
 * inside the file (a punch never extends the file).
 */
export async function writeZeros(
  file: Pick<BlockFile, 'write' | 'size'>,
  how: keyof FileCapabilities,
  offset: number,
  length: number,
  tag: WriteTag = 'data',
): Promise<void> {
  const end = how === 'punchHole' ? Math.min(offset + length, await file.size()) : offset + length;
  if (end <= offset) return;
  const zeros = new Uint8Array(Math.min(end - offset, ZERO_CHUNK_BYTES));
  for (let at = offset; at < end; at += zeros.byteLength) {
    const n = Math.min(zeros.byteLength, end - at);
    await file.write(at, n === zeros.byteLength ? zeros : zeros.subarray(0, n), tag);
  }
}

/** Refuses a range that is not a pair of non-negative safe integers (what every punch/zero checks). */
export function checkRange(what: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(offset + length)) {
    throw usage(`invalid ${what} request: offset ${offset}, length ${length}`);
  }
}

/** Runs every closer in turn, even after one fails; then throws the first failure, if any. */
export async function closeAll(closers: readonly (() => Promise<void> | undefined)[]): Promise<void> {
  let failed = false;
  let first: unknown;
  for (const close of closers) {
    try {
      await close();
    } catch (err) {
      if (!failed) first = err;
      failed = true;
    }
  }
  if (failed) throw first;
}
