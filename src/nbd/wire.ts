/**
 * Exact-length reads from a socket, with bounded read-ahead: the socket is paused when more than
 * SERVE_READ_AHEAD_BYTES are buffered and nobody is waiting for them (or when nobody reads at
 * all: a server that stops asking for requests stops receiving them, and TCP pushes back on the
 * client). Only a read() of n bytes makes the buffer hold n bytes.
 */
import type { Duplex } from 'node:stream';
import { SERVE_READ_AHEAD_BYTES } from '../limits.js';

/** The peer closed the stream (partial: in the middle of a message). */
export class EndOfStream extends Error {
  override readonly name = 'EndOfStream';
  constructor(readonly partial: boolean) {
    super(partial ? 'connection closed in the middle of a message' : 'connection closed');
  }
}

/** The reader was stopped by its owner (timeout, shutdown). */
export class ReadAborted extends Error {
  override readonly name = 'ReadAborted';
}

export class SocketReader {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken. */
  private head = 0;
  private buffered = 0;
  private want = 0;
  private ended = false;
  /** The socket is closed both ways: nothing more can be answered, so nothing more is read. */
  private closed = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly listeners: Array<[string, Parameters<Duplex['on']>[1]]>;

  /** `socket`: any duplex stream (a net.Socket, or the tls.TLSSocket over it after NBD_OPT_STARTTLS). */
  constructor(
    private readonly socket: Duplex,
    private readonly readAhead = SERVE_READ_AHEAD_BYTES,
  ) {
    this.listeners = [
      [
        'data',
        (chunk: Buffer) => {
          this.chunks.push(chunk);
          this.buffered += chunk.byteLength;
          if (this.buffered >= Math.max(this.want, this.readAhead)) socket.pause();
          this.notify();
        },
      ],
      [
        'end',
        () => {
          this.ended = true;
          this.notify();
        },
      ],
      [
        'close',
        () => {
          this.ended = true;
          this.closed = true;
          this.notify();
        },
      ],
      [
        'error',
        (err: Error) => {
          this.failure ??= err;
          this.notify();
        },
      ],
    ];
    for (const [event, fn] of this.listeners) socket.on(event, fn);
  }

  /** Bytes received and not yet read. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Stops listening to the stream (its next owner, the TLS layer, reads it from now on); the
   * stream is left paused. Bytes buffered and not read are dropped: call it when none are.
   */
  detach(): void {
    this.socket.pause();
    for (const [event, fn] of this.listeners) this.socket.off(event, fn);
    this.chunks = [];
    this.buffered = 0;
    this.head = 0;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Exactly `n` bytes (a view of received data where it lies in one chunk, else a copy). */
  async read(n: number): Promise<Uint8Array> {
    while (this.buffered < n) {
      if (this.failure) throw this.failure;
      if (this.ended) throw new EndOfStream(this.buffered > 0);
      this.want = n;
      if (this.socket.isPaused()) this.socket.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.failure instanceof ReadAborted) throw this.failure;
    if (this.closed) throw new EndOfStream(true);
    this.want = 0;
    const out = this.take(n);
    if (this.buffered < this.readAhead && this.socket.isPaused() && !this.ended) this.socket.resume();
    return out;
  }

  /** Reads and drops `n` bytes, holding at most `chunk` of them at a time. */
  async skip(n: number, chunk = 64 * 1024): Promise<void> {
    while (n > 0) {
      const k = Math.min(n, chunk);
      await this.read(k);
      n -= k;
    }
  }

  /** Stops the reader: the pending and every later read() fail with `err`; the socket is paused. */
  abort(err: Error = new ReadAborted('reading stopped')): void {
    this.failure ??= err;
    this.socket.pause();
    this.notify();
  }

  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first !== undefined && first.byteLength - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.byteLength) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(n - at, c.byteLength - this.head);
      out.set(c.subarray(this.head, this.head + k), at);
      at += k;
      this.head += k;
      if (this.head === c.byteLength) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}
