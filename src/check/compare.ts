/**
 * Compares the counted references with the stored refcounts (QEMU's compare_refcounts). A stored
 * refcount below the references is a corruption (the cluster could be reused while in use), above
 * them a leak. A referenced cluster with refcount 0 means the refcount structure itself must be
 * rebuilt. With the matching repair allowed, the stored refcount is set to the count.
 * Returns the index of the highest cluster in use (referenced or with a refcount).
 */
import type { CheckContext } from './context.js';
import type { InMemoryRefcounts } from './imrt.js';
import { type CheckCounts, type FixMode } from './result.js';

export async function compareRefcounts(
  ctx: CheckContext,
  res: CheckCounts,
  fix: FixMode,
  imrt: InMemoryRefcounts,
  state: { rebuild: boolean },
): Promise<number> {
  const store = ctx.store;
  const perBlock = store.blockEntries;
  let highest = 0;
  for (let first = 0; first < imrt.size; first += perBlock) {
    const block = await store.blockFor(first);
    const end = Math.min(imrt.size, first + perBlock);
    for (let i = first; i < end; i++) {
      if (block === undefined) {
        ctx.log?.(`Can't get refcount for cluster ${i}: Input/output error`);
        res.checkErrors++;
        continue;
      }
      const stored = block === null ? 0 : store.valueIn(block, i - first);
      const counted = imrt.get(i);
      if (stored > 0 || counted > 0) highest = i;
      if (stored === counted) continue;
      let fixed: 'leaksFixed' | 'corruptionsFixed' | undefined;
      if (stored === 0) state.rebuild = true;
      else if (stored > counted && fix.leaks) fixed = 'leaksFixed';
      else if (stored < counted && fix.errors) fixed = 'corruptionsFixed';
      const verb = fixed ? 'Repairing' : stored < counted ? 'ERROR' : 'Leaked';
      ctx.log?.(`${verb} cluster ${i} refcount=${stored} reference=${counted}`);
      if (fixed && (await store.set(i, counted))) {
        res[fixed]++;
        continue;
      }
      if (stored < counted) res.corruptions++;
      else res.leaks++;
    }
  }
  // Repaired refcounts stay in the store's cache until the whole pass has succeeded (checkRefcounts).
  return highest;
}
