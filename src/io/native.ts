/**
 * The one loader of the native addon (native/: N-API, built by `node native/build.mjs`, which
 * `npm ci` runs): the system calls Node has no binding for. lseek SEEK_DATA / SEEK_HOLE (used by
 * src/map/holes.ts) and fallocate (used by NodeFile to punch holes and zero ranges).
 *
 * Without the addon (not built) callers fall back: map sees every file as data, NodeFile writes
 * zeros. Whether that is allowed (not under CI) is the caller's decision; nativeLoadError() says why.
 */
import { createRequire } from 'node:module';

export interface NativeAddon {
  /** lseek(fd, offset, SEEK_DATA): -1 for ENXIO; throws (with `code`) on other errors. */
  seekData(fd: number, offset: number): number;
  /** lseek(fd, offset, SEEK_HOLE): -1 for ENXIO; throws (with `code`) on other errors. */
  seekHole(fd: number, offset: number): number;
  /**
   * fallocate(fd, mode, offset, length), synchronous; throws an Error with the errno name as `code`
   * (ENOTSUP when the file system does not do `mode`, ENOSPC, EIO, ...), `errno` and `syscall`.
   */
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  readonly FALLOC_FL_KEEP_SIZE: number;
  readonly FALLOC_FL_PUNCH_HOLE: number;
  readonly FALLOC_FL_ZERO_RANGE: number;
}

/** Where `node native/build.mjs` leaves the addon, from src/io/ and dist/io/ alike. */
const ADDON_PATH = '../../native/build/Release/qcow2_native.node';

let addon: NativeAddon | null | undefined;
let loadError = '';

/** The addon, loaded once; null when it is not built (see nativeLoadError()). */
export function loadNative(): NativeAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    } catch (err) {
      addon = null;
      loadError = (err as Error).message;
    }
  }
  return addon;
}

/** Why loadNative() returned null ('' when it did not). */
export function nativeLoadError(): string {
  loadNative();
  return loadError;
}

/**
 * errno names with which fallocate says "not this mode, not on this file" rather than "failed":
 * the caller then does the same with ordinary writes, and stops asking.
 */
const NOT_SUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'ENODEV', 'ESPIPE']);

/** True when a fallocate error means the mode is not supported on that file (see NOT_SUPPORTED). */
export function isNotSupported(err: unknown): boolean {
  return NOT_SUPPORTED.has((err as NodeJS.ErrnoException | null)?.code ?? '');
}
