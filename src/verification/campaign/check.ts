/** Assertions for campaign commands (they run in tests and in `qcow2 verify`, without vitest). */

export class CampaignFailure extends Error {
  override readonly name = 'CampaignFailure';
}

export function ensure(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CampaignFailure(message);
}

/** Runs `action`, which must fail with an error whose message matches `pattern`. */
export async function ensureRejects(action: () => Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  let failed: unknown;
  try {
    await action();
  } catch (err) {
    failed = err;
  }
  ensure(failed !== undefined, `${what} succeeded but should have failed`);
  ensure(pattern.test((failed as Error).message), `${what} failed with '${(failed as Error).message}', expected ${pattern}`);
}
