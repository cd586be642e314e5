/**
 * One L1 tree of the check (QEMU's check_refcounts_l1): the L1 table's clusters, each L2 table and
 * what it maps. The table is read in bounded windows; the part past the end of the file reads as
 * zeros (unused entries), as QEMU's reads do.
 */
import { view } from '../format/bytes.js';
import { decodeL1Entry } from '../format/l1.js';
import { CHECK_TABLE_WINDOW_ENTRIES as WINDOW_ENTRIES } from '../limits.js';
import { entryHex } from './entry-hex.js';
import type { CheckContext } from './context.js';
import type { InMemoryRefcounts } from './imrt.js';
import { checkL2Table, type WalkFlags } from './l2-check.js';
import type { CheckCounts } from './result.js';

export async function checkL1Tree(
  ctx: CheckContext,
  res: CheckCounts,
  imrt: InMemoryRefcounts,
  l1Offset: number | bigint,
  l1Size: number,
  flags: WalkFlags,
): Promise<void> {
  if (l1Size === 0) return;
  const C = ctx.clusterSize;
  imrt.add(res, ctx.log, l1Offset, l1Size * 8, ctx.fileSize);
  // Past 2^53 (a bigint): past any file, so the table reads as zeros: no entries.
  if (typeof l1Offset === 'bigint') return;
  for (let first = 0; first < l1Size; first += WINDOW_ENTRIES) {
    const at = l1Offset + first * 8;
    if (at >= ctx.fileSize) break; // the rest reads as zeros
    const count = Math.min(WINDOW_ENTRIES, l1Size - first);
    const bytes = await ctx.read(at, count * 8);
    const dv = view(bytes);
    for (let i = 0; i < count; i++) {
      if (dv.getUint32(i * 8) === 0 && dv.getUint32(i * 8 + 4) === 0) continue;
      const e = decodeL1Entry(dv, i * 8);
      if (e.reservedLow !== 0 || e.reservedHigh !== 0) {
        ctx.log?.(`ERROR found L1 entry with reserved bits set: ${entryHex(bytes, i * 8)}`);
        res.corruptions++;
      }
      imrt.add(res, ctx.log, e.l2Offset, C, ctx.fileSize);
      if (e.l2Offset % C !== 0) {
        ctx.log?.(`ERROR l2_offset=${e.l2Offset.toString(16)}: Table is not cluster aligned; L1 entry corrupted`);
        res.corruptions++;
      }
      // A table past the end of the file reads as zeros: nothing mapped, nothing to check.
      if (e.l2Offset < ctx.fileSize) await checkL2Table(ctx, res, imrt, e.l2Offset, flags);
    }
  }
}
