/**
 * A BlockFile that passes everything to another one after a short, pseudo-random delay (zero to
 * three turns of the event loop), so that requests in flight together really interleave at every
 * I/O, in orders that change from call to call but repeat for a given seed. For tests.
 */
import type { BlockFile, WriteTag } from './block-file.js';

export class JitterFile implements BlockFile {
  private state: number;

  constructor(
    private readonly inner: BlockFile,
    seed = 1,
  ) {
    this.state = seed >>> 0 || 1;
  }

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  private async pause(): Promise<void> {
    this.state ^= this.state << 13;
    this.state ^= this.state >>> 17;
    this.state ^= this.state << 5;
    this.state >>>= 0;
    for (let turns = this.state % 4; turns > 0; turns--) await new Promise<void>((r) => setImmediate(r));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    await this.pause();
    return this.inner.read(offset, length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<number> {
    await this.pause();
    return this.inner.readInto(offset, target);
  }

  async write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void> {
    await this.pause();
    return this.inner.write(offset, data, tag);
  }

  async size(): Promise<number> {
    return this.inner.size();
  }

  async truncate(length: number): Promise<void> {
    await this.pause();
    return this.inner.truncate(length);
  }

  async flush(): Promise<void> {
    await this.pause();
    return this.inner.flush();
  }

  async close(): Promise<void> {
    return this.inner.close();
  }
}
