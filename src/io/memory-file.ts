/**
 * BlockFile held in memory, sparse (chunks that hold data only): for tests and for hostile-input
 * checks that must not touch disk. Hole
 * punches and zero ranges zero its bytes (a punch keeps the size); a test that wants the fallback
 * of a file system without them passes capabilities with those off, and they then write zeros
 * through write() (writeZeros, block-file.ts).
 */
import { ioError, readOnlyError } from '../errors.js';
import { MEMORY_FILE_MAX_BYTES } from '../limits.js';
import { type BlockFile, checkRange, type FileCapabilities, type WriteTag, writeZeros, ZEROING_NAMES } from './block-file.js';

/** Bytes per chunk: the file is kept as the chunks that hold data, so a file with a far end costs no memory for its holes. */
const CHUNK = 64 * 1024;

export class MemoryFile implements BlockFile {
  /** Chunk index to its bytes; a missing chunk reads as zeros. */
  private readonly chunks = new Map<number, Uint8Array>();
  private length: number;

  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly readOnly = false,
    readonly capabilities: FileCapabilities = { punchHole: true, zeroRange: true },
  ) {
    for (let at = 0; at < initial.byteLength; at += CHUNK) {
      const chunk = new Uint8Array(CHUNK);
      chunk.set(initial.subarray(at, at + CHUNK));
      this.chunks.set(at / CHUNK, chunk);
    }
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
    this.eachChunk(offset, end - offset, (chunk, from, to, at) => {
      if (chunk) target.set(chunk.subarray(from, to), at - offset);
      else target.fill(0, at - offset, at - offset + (to - from));
    }, false);
    return end - offset;
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    this.checkWritable();
    this.checkLength(offset + bytes.byteLength);
    this.eachChunk(offset, bytes.byteLength, (chunk, from, to, at) => chunk!.set(bytes.subarray(at - offset, at - offset + (to - from)), from), true);
    this.length = Math.max(this.length, offset + bytes.byteLength);
  }

  async punchHole(offset: number, length: number, tag?: WriteTag): Promise<void> {
    this.checkWritable();
    checkRange(ZEROING_NAMES.punchHole, offset, length);
    if (!this.capabilities.punchHole) return writeZeros(this, 'punchHole', offset, length, tag);
    this.zero(offset, Math.max(0, Math.min(offset + length, this.length) - offset));
  }

  async zeroRange(offset: number, length: number, tag?: WriteTag): Promise<void> {
    this.checkWritable();
    checkRange(ZEROING_NAMES.zeroRange, offset, length);
    if (!this.capabilities.zeroRange) return writeZeros(this, 'zeroRange', offset, length, tag);
    if (length === 0) return;
    this.checkLength(offset + length);
    this.zero(offset, length);
    this.length = Math.max(this.length, offset + length);
  }

  async size(): Promise<number> {
    return this.length;
  }

  async truncate(length: number): Promise<void> {
    this.checkWritable();
    this.checkLength(length);
    // What lies past the new end reads as zeros if the file grows again.
    if (length < this.length) this.zero(length, this.length - length);
    this.length = length;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  /** A copy of the current contents. */
  snapshot(): Uint8Array {
    const out = new Uint8Array(this.length);
    for (const [index, chunk] of this.chunks) {
      const at = index * CHUNK;
      if (at < this.length) out.set(chunk.subarray(0, Math.min(CHUNK, this.length - at)), at);
    }
    return out;
  }

  /** Zeros [offset, offset + length): whole chunks are dropped, the others filled. */
  private zero(offset: number, length: number): void {
    if (length <= 0) return;
    this.eachChunk(offset, length, (chunk, from, to, at) => {
      if (!chunk) return;
      if (from === 0 && to === CHUNK) this.chunks.delete(Math.floor(at / CHUNK));
      else chunk.fill(0, from, to);
    }, false);
  }

  /**
   * Calls `fn` for each chunk [offset, offset + length) touches: the chunk (undefined for a hole,
   * unless `allocate`), the range inside it, and the file offset where that range starts.
   */
  private eachChunk(offset: number, length: number, fn: (chunk: Uint8Array | undefined, from: number, to: number, at: number) => void, allocate: boolean): void {
    const end = offset + length;
    for (let at = offset; at < end; ) {
      const index = Math.floor(at / CHUNK);
      const from = at - index * CHUNK;
      const to = Math.min(CHUNK, end - index * CHUNK);
      let chunk = this.chunks.get(index);
      if (!chunk && allocate) {
        chunk = new Uint8Array(CHUNK);
        this.chunks.set(index, chunk);
      }
      fn(chunk, from, to, at);
      at += to - from;
    }
  }

  private checkWritable(): void {
    if (this.readOnly) throw readOnlyError('memory file is read-only');
  }

  /** Past MEMORY_FILE_MAX_BYTES an io error, as a full disk would give. */
  private checkLength(capacity: number): void {
    if (capacity > MEMORY_FILE_MAX_BYTES) {
      throw ioError(`a memory file cannot grow to ${capacity} bytes (at most ${MEMORY_FILE_MAX_BYTES}): EFBIG`, { offset: capacity });
    }
  }
}
