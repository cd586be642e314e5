/**
 * Hole oracles over real files: lseek(2) SEEK_DATA / SEEK_HOLE through the tiny native addon in
 * native/ (Node has no binding for them). Without the addon (not built), outside CI we fall back to
 * "the whole file is data", which is what QEMU reports on a file system without hole support; under
 * CI the missing addon is an error, so a broken build cannot hide behind the fallback.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { ioError, unsupported } from '../errors.js';
import { loadNative, type NativeAddon, nativeLoadError } from '../io/native.js';
import type { HoleOracle } from './types.js';

/** The native addon (src/io/native.ts loads it), for its seekData / seekHole. */
export function loadSeekAddon(): Pick<NativeAddon, 'seekData' | 'seekHole'> | null {
  return loadNative();
}

/** True when holes are detected for real; false when the "all data" fallback is in use. */
export function holesSupported(): boolean {
  if (loadSeekAddon()) return true;
  if (process.env['CI']) {
    throw unsupported(`the native addon is not built (run \`node native/build.mjs\`): ${nativeLoadError()}`);
  }
  return false;
}

/** An open file's holes; close() when done. */
export interface FileHoles extends HoleOracle {
  close(): void;
}

export function openFileHoles(path: string): FileHoles {
  const native = holesSupported() ? loadSeekAddon() : null;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw ioError(`cannot open '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (err) {
    closeSync(fd);
    throw ioError(`cannot stat '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const seek = (f: (fd: number, offset: number) => number, offset: number): number | null => {
    const r = f(fd, offset);
    return r < 0 ? null : r;
  };
  return {
    size,
    seekData: (offset) => (native ? seek(native.seekData, offset) : offset < size ? offset : null),
    seekHole: (offset) => (native ? seek(native.seekHole, offset) : offset < size ? size : null),
    close: () => closeSync(fd),
  };
}

/** st_blocks * 512: what QEMU calls the allocated size of a file. */
export function allocatedBytes(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).blocks * 512;
  } finally {
    closeSync(fd);
  }
}
