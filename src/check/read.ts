/** The file as QEMU's checker sees it. */
import type { BlockFile } from '../io/block-file.js';

/**
 * The file's length as QEMU's checker sees it: rounded up to whole 512-byte sectors (its block
 * layer keeps lengths in sectors), so a file cut inside a sector still has that sector whole.
 */
export async function checkedFileLength(file: BlockFile): Promise<number> {
  const size = await file.size();
  return Math.ceil(size / 512) * 512;
}
