/**
 * Persistent bitmaps' clusters (QEMU's qcow2_check_bitmaps_refcounts): the bitmap directory, each
 * bitmap table and the data clusters its entries name. QEMU only knows the bitmaps while the
 * autoclear "bitmaps" bit is set; without it their clusters are unreferenced (leaks), here too.
 */
import { view } from '../format/bytes.js';
import { BITMAP_TABLE_ENTRY_SIZE } from '../format/bitmap.js';
import { CHECK_TABLE_WINDOW_ENTRIES as WINDOW_ENTRIES } from '../limits.js';
import type { CheckContext } from './context.js';
import type { InMemoryRefcounts } from './imrt.js';
import type { CheckCounts } from './result.js';

export async function countBitmaps(ctx: CheckContext, res: CheckCounts, imrt: InMemoryRefcounts): Promise<void> {
  const ext = ctx.meta.bitmapsExtension;
  if (!ext || !ctx.meta.layout.features.bitmapsConsistent || ext.nbBitmaps === 0) return;
  imrt.add(res, ctx.log, Number(ext.directoryOffset), Number(ext.directorySize), ctx.fileSize);
  const C = ctx.clusterSize;
  for (const bm of ctx.meta.bitmaps) {
    const tableOffset = Number(bm.bitmapTableOffset);
    imrt.add(res, ctx.log, tableOffset, bm.bitmapTableSize * BITMAP_TABLE_ENTRY_SIZE, ctx.fileSize);
    for (let first = 0; first < bm.bitmapTableSize; first += WINDOW_ENTRIES) {
      const at = tableOffset + first * BITMAP_TABLE_ENTRY_SIZE;
      if (at >= ctx.fileSize) break; // zeros: nothing allocated
      const count = Math.min(WINDOW_ENTRIES, bm.bitmapTableSize - first);
      const dv = view(await ctx.read(at, count * BITMAP_TABLE_ENTRY_SIZE));
      for (let i = 0; i < count; i++) {
        const hi = dv.getUint32(i * 8);
        const lo = dv.getUint32(i * 8 + 4);
        const offset = (hi & 0x00ff_ffff) * 0x1_0000_0000 + ((lo & 0xffff_fe00) >>> 0);
        // Reserved: bits 1-8 and 56-63; with an offset, bit 0 too, and the offset must be aligned.
        const bad = (hi & 0xff00_0000) !== 0 || (lo & 0x1fe) !== 0 || (offset !== 0 && ((lo & 1) !== 0 || offset % C !== 0));
        if (bad) {
          ctx.log?.(`ERROR bitmap '${bm.name}' table entry ${first + i} is invalid`);
          res.corruptions++;
          continue;
        }
        if (offset !== 0) imrt.add(res, ctx.log, offset, C, ctx.fileSize);
      }
    }
  }
}
