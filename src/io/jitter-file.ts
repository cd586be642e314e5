/**
 * A BlockFile that passes everything to another one after a short, pseudo-random delay (zero to
 * three turns of the event loop), so that requests in flight together really interleave at every
 * I/O, in orders that change from call to call but repeat for a given seed. For tests.
 */
import type { BlockFile } from './block-file.js';
import { type FileChange, ForwardingFile } from './forwarding-file.js';

export class JitterFile extends ForwardingFile {
  private state: number;

  constructor(inner: BlockFile, seed = 1) {
    super(inner);
    this.state = seed >>> 0 || 1;
  }

  private async pause(): Promise<void> {
    this.state ^= this.state << 13;
    this.state ^= this.state >>> 17;
    this.state ^= this.state << 5;
    this.state >>>= 0;
    for (let turns = this.state % 4; turns > 0; turns--) await new Promise<void>((r) => setImmediate(r));
  }

  override async read(offset: number, length: number): Promise<Uint8Array> {
    await this.pause();
    return super.read(offset, length);
  }

  override async readInto(offset: number, target: Uint8Array): Promise<number> {
    await this.pause();
    return super.readInto(offset, target);
  }

  protected override async change(_change: FileChange, apply: () => Promise<void>): Promise<void> {
    await this.pause();
    return apply();
  }

  override async truncate(length: number): Promise<void> {
    await this.pause();
    return super.truncate(length);
  }

  override async flush(): Promise<void> {
    await this.pause();
    return super.flush();
  }
}
