/**
 * File names an image stores (backing file, external data file) are untrusted input. One policy
 * for both engines: refused outright under the untrusted-image policy; empty names, NUL bytes and
 * protocol-style names refused; relative names resolved against the image's folder.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { corrupt, unsupported } from '../errors.js';
import { MAX_BACKING_DEPTH } from '../limits.js';
import type { OpenOptions } from './types.js';

export function linkedPath(imagePath: string, name: string, what: string, opts: OpenOptions): string {
  if (opts.followFileNames === false) throw unsupported(`refusing to open the ${what} '${name}' named by an untrusted image`);
  if (name.length === 0 || name.includes('\0')) throw corrupt(`the ${what} name is empty or holds a NUL byte`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(name)) throw unsupported(`${what} '${name}' is not a plain file name`);
  return isAbsolute(name) ? name : join(dirname(imagePath), name);
}

export function checkBackingDepth(depth: number): void {
  if (depth + 1 > MAX_BACKING_DEPTH) throw unsupported(`backing chain deeper than ${MAX_BACKING_DEPTH}`);
}
