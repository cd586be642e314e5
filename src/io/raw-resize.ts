/**
 * Resizing a raw image file as QEMU's file-posix driver does (handle_aiocb_truncate): off truncates;
 * falloc allocates the new range with fallocate(2) mode 0 (which extends the file); full sets the
 * length, then writes zeros over the new range and syncs.
 */
import { open } from 'node:fs/promises';
import { ioError } from '../errors.js';
import { ZERO_CHUNK_BYTES } from '../limits.js';
import { loadNative } from './native.js';

export type RawPreallocation = 'off' | 'falloc' | 'full';

export async function resizeRawFile(path: string, newSize: number, prealloc: RawPreallocation): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const current = (await handle.stat()).size;
    if (prealloc === 'falloc' && newSize > current) {
      const native = loadNative();
      if (!native) throw ioError('Could not preallocate new data: the native addon (fallocate) is not built');
      try {
        native.fallocate(handle.fd, 0, current, newSize - current);
      } catch (err) {
        throw ioError(`Could not preallocate new data: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
      }
      return;
    }
    await handle.truncate(newSize);
    if (prealloc === 'full' && newSize > current) {
      const zeros = new Uint8Array(Math.min(ZERO_CHUNK_BYTES, newSize - current));
      for (let at = current; at < newSize; at += zeros.byteLength) await handle.write(zeros, 0, Math.min(zeros.byteLength, newSize - at), at);
      await handle.sync();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EFBIG') throw ioError('File too large', { cause: err });
    throw err;
  } finally {
    await handle.close();
  }
}
