/** BlockFile held in memory: for tests and for hostile-input checks that must not touch disk. */
import { usage } from '../errors.js';
import type { BlockFile } from './block-file.js';

export class MemoryFile implements BlockFile {
  private data: Uint8Array;
  private length: number;

  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly readOnly = false,
  ) {
    this.data = initial.slice();
    this.length = initial.byteLength;
  }

  /** Goes through readInto, so a subclass that watches or delays reads overrides that one only. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const n = await this.readInto(offset, out);
    return n === length ? out : out.subarray(0, n);
  }

  async readInto(offset: number, target: Uint8Array): Promise<number> {
    const end = Math.min(this.length, offset + target.byteLength);
    if (offset >= end) return 0;
    target.set(this.data.subarray(offset, end));
    return end - offset;
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    if (this.readOnly) throw usage('memory file is read-only');
    this.ensure(offset + bytes.byteLength);
    this.data.set(bytes, offset);
    this.length = Math.max(this.length, offset + bytes.byteLength);
  }

  async size(): Promise<number> {
    return this.length;
  }

  async truncate(length: number): Promise<void> {
    if (this.readOnly) throw usage('memory file is read-only');
    this.ensure(length);
    this.data.fill(0, length);
    this.length = length;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  /** A copy of the current contents. */
  snapshot(): Uint8Array {
    return this.data.slice(0, this.length);
  }

  private ensure(capacity: number): void {
    if (capacity <= this.data.byteLength) return;
    const grown = new Uint8Array(Math.max(capacity, this.data.byteLength * 2));
    grown.set(this.data);
    this.data = grown;
  }
}
