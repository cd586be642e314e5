/**
 * Buffers that go back and forth between the calling thread and the compression workers, kept for
 * reuse instead of left to the garbage collector: at a few hundred MiB/s of (de)compressed data,
 * fresh buffers for every batch cost the calling thread more in collection than in copying.
 * Sizes are rounded up to powers of two from 64 KiB, and each size keeps a few buffers at most,
 * so what is held stays small and bounded.
 */
const MIN_CLASS = 64 * 1024;
const PER_CLASS = 8;

function classOf(n: number): number {
  let c = MIN_CLASS;
  while (c < n) c *= 2;
  return c;
}

export class BufferStash {
  private readonly free = new Map<number, ArrayBuffer[]>();

  /** n bytes (a view from the start of a buffer that may be larger; its contents are not zeroed). */
  take(n: number): Uint8Array {
    const size = classOf(n);
    const buffer = this.free.get(size)?.pop() ?? new ArrayBuffer(size);
    return new Uint8Array(buffer, 0, n);
  }

  /** Keeps `buffer` for a later take(), if it is of a size class and that class has room. */
  give(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (size < MIN_CLASS || classOf(size) !== size || buffer.byteLength === 0) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    if (list.length < PER_CLASS) list.push(buffer);
  }
}
