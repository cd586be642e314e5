/**
 * A rate limit on writes, as QEMU's (convert -r: util/throttle.c with only a bytes limit; commit -r:
 * the block job's rate limit, in slices of a tenth of a second): a leaky bucket that drains `rate`
 * bytes a second; a request waits until the bucket holds no more than a tenth of a second's bytes,
 * then adds its own. Requests pass in the order they ask.
 */
export class RateLimiter {
  private level = 0;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly rate: number) {}

  take(bytes: number): Promise<void> {
    const turn = this.queue.then(async () => {
      this.drain();
      const extra = this.level - this.rate / 10;
      if (extra > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.ceil((extra / this.rate) * 1000)));
        this.drain();
      }
      this.level += bytes;
    });
    this.queue = turn;
    return turn;
  }

  private drain(): void {
    const now = performance.now();
    this.level = Math.max(0, this.level - ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}
