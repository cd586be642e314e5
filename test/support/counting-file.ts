/** Wraps a MemoryFile and records the largest single read requested, to bound memory use. */
import type { BlockFile } from '../../src/io/block-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';

export class CountingFile extends MemoryFile implements BlockFile {
  largestRead = 0;
  totalRead = 0;

  override async readInto(offset: number, target: Uint8Array): Promise<number> {
    this.largestRead = Math.max(this.largestRead, target.byteLength);
    this.totalRead += target.byteLength;
    return super.readInto(offset, target);
  }
}
