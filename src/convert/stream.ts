/**
 * A device's guest bytes as a Node Readable: read on demand (backpressure is the stream's), in
 * chunks; ranges the backing chain calls zero are produced without reading them.
 */
import { Readable } from 'node:stream';
import { contentExtents } from '../engine/chain.js';
import type { BlockDevice } from '../engine/types.js';
import { usage } from '../errors.js';
import { BLOCK_STATUS_CHUNK_BYTES, COPY_CHUNK_BYTES } from '../limits.js';

export interface GuestStreamOptions {
  /** First guest byte; default 0. */
  offset?: number;
  /** Bytes to stream; default up to the end of the disk. */
  length?: number;
  /** Bytes per chunk pushed; default 1 MiB. */
  chunkSize?: number;
}

/**
 * The guest bytes of `device` (through its backing chain) from `offset` for `length` bytes. The
 * stream does not close the device; close it once the stream has ended (or been destroyed).
 */
export function guestStream(device: BlockDevice, opts: GuestStreamOptions = {}): Readable {
  const offset = opts.offset ?? 0;
  const size = device.virtualSize;
  const length = opts.length ?? Math.max(0, size - offset);
  const chunkSize = opts.chunkSize ?? COPY_CHUNK_BYTES;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > size) {
    throw usage(`guestStream: range ${offset}+${length} is not inside the disk (${size} bytes)`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw usage(`guestStream: chunkSize must be a whole number of at least 1, not ${chunkSize}`);
  return Readable.from(chunks(device, offset, offset + length, chunkSize), { objectMode: false });
}

async function* chunks(device: BlockDevice, start: number, end: number, chunkSize: number): AsyncGenerator<Buffer> {
  for (let base = start; base < end; base += BLOCK_STATUS_CHUNK_BYTES) {
    for (const e of await contentExtents(device, base, Math.min(BLOCK_STATUS_CHUNK_BYTES, end - base))) {
      for (let pos = e.start; pos < e.start + e.length; pos += chunkSize) {
        const n = Math.min(chunkSize, e.start + e.length - pos);
        if (e.zero) {
          yield Buffer.alloc(n);
          continue;
        }
        const buf = Buffer.allocUnsafe(n);
        await device.readInto(pos, buf);
        yield buf;
      }
    }
  }
}
