/** Wraps a MemoryFile and records the largest single read requested, to bound memory use. */
import type { BlockFile } from '../../src/io/block-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';

export class CountingFile extends MemoryFile implements BlockFile {
  largestRead = 0;
  totalRead = 0;

  override async read(offset: number, length: number): Promise<Uint8Array> {
    this.largestRead = Math.max(this.largestRead, length);
    this.totalRead += length;
    return super.read(offset, length);
  }
}
