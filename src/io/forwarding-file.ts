/**
 * The base of every BlockFile wrapper (jitter, recording, fault injection, barriers, the reference
 * engine's durable file): passes each call to the file it wraps, so a wrapper holds only what it
 * changes. Writes, hole punches and zero ranges all change bytes on the disk, and every wrapper
 * treats them alike (a punch is a write of zeros that may also free blocks): they all go through
 * change(), which is the one method most wrappers override.
 */
import { type BlockFile, type FileCapabilities, type WriteTag, ZEROING_NAMES } from './block-file.js';

/** What a write, hole punch or zero range is about to change. */
export type FileChange =
  | { kind: 'write'; offset: number; length: number; tag: WriteTag; data: Uint8Array }
  /** Zeros `length` bytes at `offset` but never extends the file (see BlockFile.punchHole). */
  | { kind: 'punchHole'; offset: number; length: number; tag: WriteTag }
  /** Zeros `length` bytes at `offset`, extending the file like a write (see BlockFile.zeroRange). */
  | { kind: 'zeroRange'; offset: number; length: number; tag: WriteTag };

export class ForwardingFile implements BlockFile {
  constructor(readonly inner: BlockFile) {}

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  get capabilities(): FileCapabilities {
    return this.inner.capabilities;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }

  readInto(offset: number, target: Uint8Array): Promise<number> {
    return this.inner.readInto(offset, target);
  }

  write(offset: number, data: Uint8Array, tag: WriteTag = 'data'): Promise<void> {
    return this.change({ kind: 'write', offset, length: data.byteLength, tag, data }, () => this.inner.write(offset, data, tag));
  }

  punchHole(offset: number, length: number, tag: WriteTag = 'data'): Promise<void> {
    return this.change({ kind: 'punchHole', offset, length, tag }, () => this.inner.punchHole(offset, length, tag));
  }

  zeroRange(offset: number, length: number, tag: WriteTag = 'data'): Promise<void> {
    return this.change({ kind: 'zeroRange', offset, length, tag }, () => this.inner.zeroRange(offset, length, tag));
  }

  /**
   * Every write, punch and zero range: `apply` passes it on to the inner file. Overridden by the
   * wrappers that log, fail, count or order changes.
   */
  protected change(_change: FileChange, apply: () => Promise<void>): Promise<void> {
    return apply();
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** How a change reads in a message: `write of 4096 bytes at 0x10000 (l2)`. */
export function describeChange(c: FileChange): string {
  const what = c.kind === 'write' ? 'write' : ZEROING_NAMES[c.kind];
  return `${what} of ${c.length} bytes at 0x${c.offset.toString(16)} (${c.tag})`;
}
