/**
 * A BlockFile that passes everything through and keeps a log of every write (with a copy of its
 * bytes), truncate and completed flush, in the order they were issued. The crash explorer
 * (src/crash/) rebuilds from that log every state the file could be in after a power loss.
 * Callers note `log.length` to place their own events (a guest flush returned) among the file's.
 * An image and its external data file may share one log: each operation names its file.
 *
 * A hole punch or zero range is logged as what it does to the bytes: a write of zeros with its tag
 * ('data' by default); a punch only over its part inside the file (it never extends it), as the
 * file's size was when the punch was issued.
 */
import type { BlockFile, WriteTag } from './block-file.js';
import { type FileChange, ForwardingFile } from './forwarding-file.js';

/** Which file an operation went to (`image` unless told otherwise). */
export type FileRole = 'image' | 'data-file';

export type FileOp =
  | { kind: 'write'; offset: number; data: Uint8Array; tag: WriteTag; file?: FileRole }
  | { kind: 'truncate'; length: number; file?: FileRole }
  /** `inFlight`: writes issued before the flush began that had not completed then (not covered). */
  | { kind: 'flush'; inFlight: number[]; file?: FileRole };

export class RecordingFile extends ForwardingFile {
  private readonly pending = new Set<number>();

  constructor(
    inner: BlockFile,
    readonly log: FileOp[] = [],
    private readonly role: FileRole = 'image',
  ) {
    super(inner);
  }

  protected override async change(c: FileChange, apply: () => Promise<void>): Promise<void> {
    const data = c.kind === 'write' ? c.data.slice() : new Uint8Array(await this.zeroed(c));
    if (c.kind !== 'write' && data.byteLength === 0) return apply();
    // Logged when issued: a write that is in flight at a crash may or may not have landed.
    const index = this.log.push({ kind: 'write', offset: c.offset, data, tag: c.tag, ...this.named() }) - 1;
    this.pending.add(index);
    try {
      await apply();
    } finally {
      this.pending.delete(index);
    }
  }

  override async truncate(length: number): Promise<void> {
    this.log.push({ kind: 'truncate', length, ...this.named() });
    await this.inner.truncate(length);
  }

  override async flush(): Promise<void> {
    const inFlight = [...this.pending];
    await this.inner.flush();
    // Logged when complete: only then is everything completed before it began durable.
    this.log.push({ kind: 'flush', inFlight, ...this.named() });
  }

  /** How many bytes a punch or zero range makes zero: a punch stops at the end of the file. */
  private async zeroed(c: FileChange): Promise<number> {
    if (c.kind !== 'punchHole') return c.length;
    return Math.max(0, Math.min(c.offset + c.length, await this.inner.size()) - c.offset);
  }

  private named(): { file?: FileRole } {
    return this.role === 'image' ? {} : { file: this.role };
  }
}
