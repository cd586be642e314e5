/**
 * The one check every device makes of a guest request: offset and length are non-negative safe
 * integers, the range lies inside the disk (unless the device may grow into it: a raw file's
 * writes), and a request that carries data (read, write) is no larger than MAX_REQUEST_BYTES, the
 * largest request QEMU's block layer takes. Servers and commands rely on it: nothing larger reaches
 * an engine.
 */
import { usage } from '../errors.js';
import { checkRange } from '../io/block-file.js';
import { MAX_REQUEST_BYTES } from '../limits.js';

export type RequestKind = 'read' | 'write' | 'write zeroes' | 'discard' | 'map' | 'block status' | 'compressed write';

export function checkRequest(what: RequestKind, offset: number, length: number, virtualSize: number, opts: { mayExtend?: boolean } = {}): void {
  checkRange(what, offset, length);
  if ((what === 'read' || what === 'write' || what === 'compressed write') && length > MAX_REQUEST_BYTES) {
    throw usage(`${what} of ${length} bytes is larger than the largest request (${MAX_REQUEST_BYTES} bytes)`, { offset });
  }
  if (!opts.mayExtend && offset + length > virtualSize) {
    throw usage(`${what} of ${length} bytes at ${offset} is beyond the end of the disk (${virtualSize} bytes)`, { offset });
  }
}
