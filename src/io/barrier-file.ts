/**
 * A BlockFile that knows which kinds of writes completed since the last flush, so that a write
 * which must not reach the disk before earlier ones can ask for a barrier that flushes only when
 * there is something to order against (QEMU's cache dependencies end in the same flush).
 */
import type { BlockFile, WriteTag } from './block-file.js';

export class BarrierFile implements BlockFile {
  /** Completed writes per tag, and how many of them the last completed flush covered. */
  private readonly written = new Map<WriteTag, number>();
  private readonly covered = new Map<WriteTag, number>();
  /** Flushes made by barriers (for tests and benchmarks). */
  barriers = 0;
  /**
   * The first failed metadata write or flush. After it, what is on the disk is only known to be
   * some prefix of the intended order, so the engine stops changing the image (poisoned).
   */
  failure: Error | undefined;

  constructor(readonly inner: BlockFile) {}

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
    try {
      await this.inner.write(offset, data, tag);
    } catch (err) {
      // A failed data write changes no metadata: the request fails and the image stays usable.
      if (tag !== 'data') this.failure ??= err as Error;
      throw err;
    }
    this.written.set(tag, (this.written.get(tag) ?? 0) + 1);
  }

  async flush(): Promise<void> {
    const upTo = new Map(this.written);
    try {
      await this.inner.flush();
    } catch (err) {
      this.failure ??= err as Error;
      throw err;
    }
    for (const [tag, n] of upTo) this.covered.set(tag, Math.max(n, this.covered.get(tag) ?? 0));
  }

  /** Flushes if a write of any tag but `except` completed since the last flush. */
  async barrier(except?: WriteTag): Promise<void> {
    for (const [tag, n] of this.written) {
      if (tag !== except && n !== (this.covered.get(tag) ?? 0)) {
        this.barriers++;
        await this.flush();
        return;
      }
    }
  }

  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
