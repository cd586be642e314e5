/**
 * The request offsets of `qemu-img bench` (qemu-img.c, bench_cb): the first request goes to the
 * start offset as given (it is not reduced modulo the image size, so an offset past the end fails),
 * then each next one to `(previous + step) % imageSize`. QEMU does not clip a request that crosses
 * the end of the image: such a request fails (EIO), and so does ours (the engine refuses it).
 */

/** The offset of the request after one at `offset`, as QEMU computes it. */
export function nextOffset(offset: number, step: number, imageSize: number): number {
  return (offset + step) % imageSize;
}

/** The offsets of the first `count` requests (for tests and for reasoning; the runner uses nextOffset). */
export function* requestOffsets(start: number, step: number, imageSize: number, count: number): Generator<number> {
  let offset = start;
  for (let i = 0; i < count; i++) {
    yield offset;
    offset = nextOffset(offset, step, imageSize);
  }
}
