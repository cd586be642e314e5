/**
 * The refcount part of a check (QEMU's qcow2_check_refcounts): count references, compare them with
 * the stored refcounts, repair what the mode allows (rebuilding the whole refcount structure when
 * it is broken and errors may be fixed), then check the COPIED flags against the (repaired)
 * refcounts. Sets the image end offset and the allocation figures.
 */
import { corrupt, unsupported } from '../errors.js';
import { MAX_CHECK_CLUSTERS } from '../limits.js';
import { calculateRefcounts } from './calculate.js';
import { compareRefcounts } from './compare.js';
import type { CheckContext } from './context.js';
import { checkCopied } from './copied.js';
import { InMemoryRefcounts } from './imrt.js';
import { rebuildRefcountStructure } from './rebuild.js';
import { type CheckCounts, NO_FIX, anyFix, emptyCounts } from './result.js';

export async function checkRefcounts(ctx: CheckContext, res: CheckCounts): Promise<void> {
  const C = ctx.clusterSize;
  const nbClusters = Math.ceil(ctx.fileSize / C);
  if (nbClusters > MAX_CHECK_CLUSTERS) {
    res.checkErrors++;
    throw unsupported(`the file has ${nbClusters} clusters, more than ${MAX_CHECK_CLUSTERS}`);
  }
  res.totalClusters = Math.ceil(ctx.meta.layout.geometry.virtualSize / C);
  const imrt = new InMemoryRefcounts(nbClusters, C, ctx.refcountMax);
  const state = { rebuild: false };
  await calculateRefcounts(ctx, res, imrt, state);

  // When the comparison is repeated below to repair, this first result is dropped.
  const before = { ...res };
  let highest = await compareRefcounts(ctx, res, NO_FIX, imrt, state);

  if (state.rebuild && ctx.fix.errors) {
    const old = { ...res };
    ctx.log?.('Rebuilding refcount structure');
    await rebuildRefcountStructure(ctx, imrt);
    res.corruptions = 0;
    res.leaks = 0;
    state.rebuild = false;
    imrt.clear();
    const fixNone = ctx.fix;
    ctx.fix = NO_FIX;
    try {
      await calculateRefcounts(ctx, res, imrt, state);
    } finally {
      ctx.fix = fixNone;
    }
    let freshLeaks = 0;
    if (ctx.fix.leaks) {
      // The old structure is now leaked: free it. Leaks left after that came from the rebuild.
      const scratch = emptyCounts();
      highest = await compareRefcounts(ctx, scratch, { leaks: true, errors: false }, imrt, state);
      if (state.rebuild) ctx.log?.('ERROR rebuilt refcount structure is still broken');
      freshLeaks = scratch.leaks;
    }
    if (res.corruptions < old.corruptions) res.corruptionsFixed += old.corruptions - res.corruptions;
    if (res.leaks < old.leaks) res.leaksFixed += old.leaks - res.leaks;
    res.leaks += freshLeaks;
  } else if (anyFix(ctx.fix)) {
    if (state.rebuild) {
      ctx.log?.('ERROR need to rebuild refcount structures');
      res.checkErrors++;
      throw corrupt('the refcount structure must be rebuilt, which only -r all does');
    }
    if (res.leaks || res.corruptions) {
      Object.assign(res, before);
      highest = await compareRefcounts(ctx, res, ctx.fix, imrt, state);
    }
  }

  await checkCopied(ctx, res);
  // As QEMU's refcount block cache: repaired refcounts are written once the COPIED pass has not
  // stopped the check (a repair that fails there leaves them as they were; blocks evicted from the
  // cache on the way are written then, as QEMU's are).
  await ctx.store.flush();
  res.imageEndOffset = (highest + 1) * C;
}
