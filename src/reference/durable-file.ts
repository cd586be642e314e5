/**
 * The reference engine's crash safety, in the simplest form there is: every write is flushed before
 * the call returns, so each step of an update (data, refcount, L2 entry, L1 entry, header) is on
 * the disk before the next one begins, and a crash leaves the image as it was between two steps.
 * The order of the steps (write.ts, refcounts.ts) then makes every such point safe: at worst leaks.
 */
import type { BlockFile, WriteTag } from '../io/block-file.js';

export class DurableFile implements BlockFile {
  constructor(private readonly inner: BlockFile) {}

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }

  readInto(offset: number, target: Uint8Array): Promise<number> {
    return this.inner.readInto(offset, target);
  }

  async write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void> {
    await this.inner.write(offset, data, tag);
    await this.inner.flush();
  }

  async truncate(length: number): Promise<void> {
    await this.inner.truncate(length);
    await this.inner.flush();
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
