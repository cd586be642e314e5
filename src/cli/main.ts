/** Entry point of the `qcow2` command: dispatches to one file per subcommand. */
import { isQcow2Error } from '../errors.js';
import { type CliContext, processContext, type Subcommand } from './context.js';
import { bench } from './bench.js';
import { check } from './check.js';
import { commandHelp, mainHelp } from './commands.js';
import { compare } from './compare.js';
import { convert } from './convert.js';
import { create } from './create.js';
import { info } from './info.js';
import { io } from './io.js';
import { map } from './map.js';
import { snapshot } from './snapshot.js';
import { verify } from './verify.js';

/** The subcommands; their synopses and descriptions are in ./commands.ts (one entry each). */
export const SUBCOMMANDS: Record<string, Subcommand> = { bench, check, compare, convert, create, info, io, map, snapshot, verify };

export async function main(argv: string[], ctx: CliContext = processContext()): Promise<void> {
  process.exitCode = await run(argv, ctx);
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' ? args[0] : undefined;
    if (topic !== undefined && !Object.hasOwn(SUBCOMMANDS, topic)) {
      ctx.stderr(`qcow2: unknown command '${topic}'\n${mainHelp()}`);
      return 1;
    }
    ctx.stdout(topic === undefined ? mainHelp() : commandHelp(topic));
    return name === undefined ? 1 : 0;
  }
  const command = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  if (!command) {
    ctx.stderr(`qcow2: unknown command '${name}'\n${mainHelp()}`);
    return 1;
  }
  if (args[0] === '-h' || args[0] === '--help') {
    ctx.stdout(commandHelp(name));
    return 0;
  }
  try {
    return await command(args, ctx);
  } catch (err) {
    if (isQcow2Error(err)) {
      ctx.stderr(`qcow2 ${name}: ${err.describe()}\n`);
      return 1;
    }
    const detail = process.env['QCOW2_DEBUG'] ? `\n${(err as Error).stack ?? ''}` : '';
    ctx.stderr(`qcow2 ${name}: internal error: ${(err as Error).message}${detail}\n`);
    return 1;
  }
}
