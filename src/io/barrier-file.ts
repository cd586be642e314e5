/**
 * A BlockFile that knows which kinds of writes completed since the last flush, so that a write
 * which must not reach the disk before earlier ones can ask for a barrier that flushes only when
 * there is something to order against (QEMU's cache dependencies end in the same flush). Hole
 * punches and zero ranges are writes (of zeros) here, counted under their tag.
 */
import type { WriteTag } from './block-file.js';
import { type FileChange, ForwardingFile } from './forwarding-file.js';

export class BarrierFile extends ForwardingFile {
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

  protected override async change(c: FileChange, apply: () => Promise<void>): Promise<void> {
    try {
      await apply();
    } catch (err) {
      // A failed data write changes no metadata: the request fails and the image stays usable.
      if (c.tag !== 'data') this.failure ??= err as Error;
      throw err;
    }
    this.written.set(c.tag, (this.written.get(c.tag) ?? 0) + 1);
  }

  override async flush(): Promise<void> {
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
}
