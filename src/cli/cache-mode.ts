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
