/**
 * qemu-img's `-t CACHE` names (bdrv_parse_cache_mode), as far as they have an honest meaning over
 * an engine doing its I/O through the page cache: 'writeback' passes flushes on, 'writethrough'
 * flushes after every write, 'unsafe' drops flushes (QEMU's cache.no-flush). The O_DIRECT modes are
 * refused rather than run as something else under their name.
 */
import { unsupported, usage } from '../errors.js';

export type CacheMode = 'writeback' | 'writethrough' | 'unsafe';

export function cacheMode(command: string, value: string): CacheMode {
  switch (value) {
    case 'writeback':
    case 'writethrough':
    case 'unsafe':
      return value;
    case 'none':
    case 'off':
    case 'directsync':
      throw unsupported(`${command}: cache mode '${value}' needs O_DIRECT; our engines do their I/O through the page cache (use writeback, writethrough or unsafe)`);
    default:
      throw usage(`${command}: Invalid cache mode`);
  }
}

/**
 * `-T SRC_CACHE`, the cache mode of images that are only read (qemu-img check, compare, convert,
 * rebase): every name bdrv_parse_cache_mode() knows is taken, the O_DIRECT ones too, since reading
 * through the page cache gives the same bytes; anything else is refused with qemu-img's message.
 */
export function sourceCacheMode(value: string): void {
  if (!['none', 'off', 'directsync', 'writeback', 'writethrough', 'unsafe'].includes(value)) throw usage(`Invalid source cache option: ${value}`);
}
