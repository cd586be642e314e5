/**
 * The reference engine's crash safety, in the simplest form there is: every write (hole punches and
 * zero ranges included) is flushed before the call returns, so each step of an update (data,
 * refcount, L2 entry, L1 entry, header) is on the disk before the next one begins, and a crash
 * leaves the image as it was between two steps. The order of the steps (write.ts, refcounts.ts)
 * then makes every such point safe: at worst leaks.
 */
import { type FileChange, ForwardingFile } from '../io/forwarding-file.js';

export class DurableFile extends ForwardingFile {
  /**
   * The first failed metadata write or flush: the update it belonged to stopped half way (safe:
   * every step before it is on the disk), and the engine makes no further change (poisoned).
   */
  failure: Error | undefined;

  protected override async change(c: FileChange, apply: () => Promise<void>): Promise<void> {
    await this.guard(c.tag !== 'data', apply);
    await this.guard(true, () => this.inner.flush());
  }

  override async truncate(length: number): Promise<void> {
    await this.guard(true, () => this.inner.truncate(length));
    await this.guard(true, () => this.inner.flush());
  }

  override flush(): Promise<void> {
    return this.guard(true, () => this.inner.flush());
  }

  private async guard(poisons: boolean, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      if (poisons) this.failure ??= err as Error;
      throw err;
    }
  }
}
