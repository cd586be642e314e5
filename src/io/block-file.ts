/**
 * All image I/O goes through this interface: the node file backend, the in-memory backend and the
 * fault-injecting backend implement all of it, so every engine and test can swap them.
 */

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

export interface BlockFile {
  /** Reads up to `length` bytes at `offset`; the result is shorter only at end of file. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads into `target` (all of it, or up to end of file) and returns the number of bytes read;
   * bytes of `target` past that count are left as they were. No buffer is allocated.
   */
  readInto(offset: number, target: Uint8Array): Promise<number>;
  write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void>;
  size(): Promise<number>;
  truncate(length: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly readOnly: boolean;
}
