/**
 * Delta debugging over a case's list of mutations: the smallest sub-list (in order) for which the
 * same finding (same signature) still happens. Lists are short (1 to 4 mutations), so this is
 * ddmin's complement step plus single-element removal, within an evaluation budget.
 */
import type { Mutation } from './mutation.js';

export async function shrink(mutations: readonly Mutation[], stillFails: (candidate: Mutation[]) => Promise<boolean>, budget = 48): Promise<Mutation[]> {
  let current = [...mutations];
  let evaluations = 0;
  let granularity = 2;
  while (current.length >= 2 && evaluations < budget) {
    const chunk = Math.ceil(current.length / granularity);
    let reduced = false;
    for (let start = 0; start < current.length && evaluations < budget; start += chunk) {
      const complement = [...current.slice(0, start), ...current.slice(start + chunk)];
      evaluations++;
      if (complement.length > 0 && (await stillFails(complement))) {
        current = complement;
        granularity = Math.max(granularity - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (granularity >= current.length) break;
      granularity = Math.min(current.length, granularity * 2);
    }
  }
  return current;
}
