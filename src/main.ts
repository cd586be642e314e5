/**
 * The `qcow2` program (bin/qcow2): the product's commands (src/cli/) and `qcow2 verify` and
 * `qcow2 fuzz`, which belong to the verification wing (src/verification/) and is loaded only when that command runs.
 * This is the one file outside the wing that reaches into it, and it stands above both.
 */
import { commit } from './cli/commit.js';
import { type CliContext, processContext, type Subcommand } from './cli/context.js';
import { dd } from './cli/dd.js';
import { parseFuzzArgs } from './cli/fuzz.js';
import { run, SUBCOMMANDS } from './cli/main.js';

const verify: Subcommand = async (args, ctx) => (await import('./verification/verify/verify.js')).verify(args, ctx);
const fuzz: Subcommand = async (args, ctx) => {
  const parsed = parseFuzzArgs(args);
  return (await import('./verification/fuzz/command.js')).fuzzCommand(parsed, ctx);
};

/** Every subcommand of the program; their synopses and descriptions are in src/cli/commands.ts. */
export const COMMANDS: Record<string, Subcommand> = {
  ...SUBCOMMANDS,
  commit,
  dd,
  verify,
  fuzz,
};

export async function main(argv: string[], ctx: CliContext = processContext()): Promise<void> {
  process.exitCode = await run(argv, ctx, COMMANDS);
}
