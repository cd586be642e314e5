/**
 * `qcow2 verify`'s command entry: the one product file that reaches into the verification wing
 * (src/verification/, the corpus, campaign and crash checks). It loads the wing only when the
 * command runs, so the other commands never load it.
 */
import type { Subcommand } from './context.js';

export const verify: Subcommand = async (args, ctx) => {
  const wing = await import('../verification/verify/verify.js');
  return wing.verify(args, ctx);
};
