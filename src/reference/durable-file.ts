/**
 * The reference engine's crash safety, in the simplest form there is: every write is flushed before
 * the call returns, so each step of an update (data, refcount, L2 entry, L1 entry, header) is on
 * the disk before the next one begins, and a crash leaves the image as it was between two steps.
 * The order of the steps (write.ts, refcounts.ts) then makes every such point safe: at worst leaks.
 */
import type { BlockFile, WriteTag } from '../io/block-file.js';

export class DurableFile implements BlockFile {
  /**
   * The first failed metadata write or flush: the update it belonged to stopped half way (safe:
   * every step before it is on the disk), and the engine makes no further change (poisoned).
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
    await this.guard(tag !== 'data', () => this.inner.write(offset, data, tag));
    await this.guard(true, () => this.inner.flush());
  }

  async truncate(length: number): Promise<void> {
    await this.guard(true, () => this.inner.truncate(length));
    await this.guard(true, () => this.inner.flush());
  }

  flush(): Promise<void> {
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

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
