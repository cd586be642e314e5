/**
 * The refcount blocks themselves (QEMU's check_refblocks): each table entry must have no reserved
 * bits, be cluster aligned and lie inside the file, and each block must be referenced exactly once.
 * A broken entry means the refcount structure must be rebuilt. With errors to fix, a block past the
 * end of the file is brought inside it by growing the file (QEMU does the same), within a bound.
 */
import { checkedFileLength } from './read.js';
import { MAX_CHECK_GROWTH_BYTES } from '../limits.js';
import type { CountingPass } from './context.js';
import { refblockAligned } from './refcount-store.js';

export const checkRefblocks: CountingPass = async (ctx, res, imrt, state) => {
  const C = ctx.clusterSize;
  const table = ctx.store.table;
  for (let i = 0; i < table.length; i++) {
    const entry = table[i];
    if (entry === undefined) continue;
    const offset = entry.offset;
    if (entry.reserved !== 0) {
      ctx.log?.(`ERROR refcount table entry ${i} has reserved bits set`);
      res.corruptions++;
      state.rebuild = true;
      continue;
    }
    if (!refblockAligned(entry, C)) {
      ctx.log?.(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
      res.corruptions++;
      state.rebuild = true;
      continue;
    }
    const cluster = Math.floor(offset / C);
    if (cluster >= imrt.size) {
      res.corruptions++;
      ctx.log?.(`${ctx.fix.errors ? 'Repairing' : 'ERROR'} refcount block ${i} is outside image`);
      if (!ctx.fix.errors) continue;
      if (!Number.isSafeInteger(offset + C) || offset + C - ctx.fileSize > MAX_CHECK_GROWTH_BYTES) {
        state.rebuild = true;
        ctx.log?.('ERROR could not resize image: File too large');
        continue;
      }
      await ctx.file.truncate(offset + C);
      ctx.fileSize = await checkedFileLength(ctx.file);
      imrt.grow(Math.ceil(ctx.fileSize / C));
      res.corruptions--;
      res.corruptionsFixed++;
      imrt.add(res, ctx.log, offset, C, ctx.fileSize);
      continue;
    }
    if (offset !== 0) {
      imrt.add(res, ctx.log, offset, C, ctx.fileSize);
      const n = imrt.get(cluster);
      if (n !== 1) {
        ctx.log?.(`ERROR refcount block ${i} refcount=${n}`);
        res.corruptions++;
        state.rebuild = true;
      }
    }
  }
};
