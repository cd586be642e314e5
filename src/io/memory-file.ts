/**
 * BlockFile held in memory: for tests and for hostile-input checks that must not touch disk. Hole
 * punches and zero ranges zero its bytes (a punch keeps the size); a test that wants the fallback
 * of a file system without them passes capabilities with those off, and they then write zeros
 * through write() (writeZeros, block-file.ts).
 */
import { ioError, readOnlyError } from '../errors.js';
import { MEMORY_FILE_MAX_BYTES } from '../limits.js';
import { type BlockFile, checkRange, type FileCapabilities, type WriteTag, writeZeros, ZEROING_NAMES } from './block-file.js';

export class MemoryFile implements BlockFile {
  private data: Uint8Array;
  private length: number;

  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly readOnly = false,
    readonly capabilities: FileCapabilities = { punchHole: true, zeroRange: true },
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
    this.checkWritable();
    this.ensure(offset + bytes.byteLength);
    this.data.set(bytes, offset);
    this.length = Math.max(this.length, offset + bytes.byteLength);
  }

  async punchHole(offset: number, length: number, tag?: WriteTag): Promise<void> {
    this.checkWritable();
    checkRange(ZEROING_NAMES.punchHole, offset, length);
    if (!this.capabilities.punchHole) return writeZeros(this, 'punchHole', offset, length, tag);
    this.data.fill(0, Math.min(offset, this.length), Math.min(offset + length, this.length));
  }

  async zeroRange(offset: number, length: number, tag?: WriteTag): Promise<void> {
    this.checkWritable();
    checkRange(ZEROING_NAMES.zeroRange, offset, length);
    if (!this.capabilities.zeroRange) return writeZeros(this, 'zeroRange', offset, length, tag);
    if (length === 0) return;
    this.ensure(offset + length);
    this.data.fill(0, offset, offset + length);
    this.length = Math.max(this.length, offset + length);
  }

  async size(): Promise<number> {
    return this.length;
  }

  async truncate(length: number): Promise<void> {
    this.checkWritable();
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

  private checkWritable(): void {
    if (this.readOnly) throw readOnlyError('memory file is read-only');
  }

  /** Grows the buffer to hold `capacity` bytes; past MEMORY_FILE_MAX_BYTES an io error, as a full disk would give. */
  private ensure(capacity: number): void {
    if (capacity <= this.data.byteLength) return;
    if (capacity > MEMORY_FILE_MAX_BYTES) {
      throw ioError(`a memory file cannot grow to ${capacity} bytes (at most ${MEMORY_FILE_MAX_BYTES}): EFBIG`, { offset: capacity });
    }
    const grown = new Uint8Array(Math.min(MEMORY_FILE_MAX_BYTES, Math.max(capacity, this.data.byteLength * 2)));
    grown.set(this.data);
    this.data = grown;
  }
}
