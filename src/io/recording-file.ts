/**
 * A BlockFile that passes everything through and keeps a log of every write (with a copy of its
 * bytes), truncate and completed flush, in the order they were issued. The crash explorer
 * (src/crash/) rebuilds from that log every state the file could be in after a power loss.
 * Callers note `log.length` to place their own events (a guest flush returned) among the file's.
 * An image and its external data file may share one log: each operation names its file.
 */
import type { BlockFile, WriteTag } from './block-file.js';

/** Which file an operation went to (`image` unless told otherwise). */
export type FileRole = 'image' | 'data-file';

export type FileOp =
  | { kind: 'write'; offset: number; data: Uint8Array; tag: WriteTag; file?: FileRole }
  | { kind: 'truncate'; length: number; file?: FileRole }
  /** `inFlight`: writes issued before the flush began that had not completed then (not covered). */
  | { kind: 'flush'; inFlight: number[]; file?: FileRole };

export class RecordingFile implements BlockFile {
  private readonly pending = new Set<number>();

  constructor(
    private readonly inner: BlockFile,
    readonly log: FileOp[] = [],
    private readonly role: FileRole = 'image',
  ) {}

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }

  readInto(offset: number, target: Uint8Array): Promise<number> {
    return this.inner.readInto(offset, target);
  }

  async write(offset: number, data: Uint8Array, tag: WriteTag = 'data'): Promise<void> {
    // Logged when issued: a write that is in flight at a crash may or may not have landed.
    const index = this.log.push({ kind: 'write', offset, data: data.slice(), tag, ...this.named() }) - 1;
    this.pending.add(index);
    try {
      await this.inner.write(offset, data, tag);
    } finally {
      this.pending.delete(index);
    }
  }

  async truncate(length: number): Promise<void> {
    this.log.push({ kind: 'truncate', length, ...this.named() });
    await this.inner.truncate(length);
  }

  async flush(): Promise<void> {
    const inFlight = [...this.pending];
    await this.inner.flush();
    // Logged when complete: only then is everything completed before it began durable.
    this.log.push({ kind: 'flush', inFlight, ...this.named() });
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private named(): { file?: FileRole } {
    return this.role === 'image' ? {} : { file: this.role };
  }
}
