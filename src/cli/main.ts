/**
 * The product's commands: dispatches to one file per subcommand. The program (src/main.ts) adds
 * `qcow2 verify`, which belongs to the verification wing.
 */
import { isQcow2Error } from '../errors.js';
import type { CliContext, Subcommand } from './context.js';
import { amend } from './amend.js';
import { bench } from './bench.js';
import { check } from './check.js';
import { commandHelp, mainHelp } from './commands.js';
import { compare } from './compare.js';
import { convert } from './convert.js';
import { create } from './create.js';
import { info } from './info.js';
import { io } from './io/run.js';
import { map } from './map.js';
import { bitmap } from './bitmap.js';
import { measure } from './measure.js';
import { nbd } from './nbd.js';
import { rebase } from './rebase.js';
import { resize } from './resize.js';
import { ublk } from './ublk.js';
import { snapshot } from './snapshot.js';

/** The product's subcommands; their synopses and descriptions are in ./commands.ts (one entry each). */
export const SUBCOMMANDS: Record<string, Subcommand> = { amend, bench, bitmap, check, compare, convert, create, info, io, map, measure, nbd, rebase, resize, snapshot, ublk };

/** Runs one command line against `commands` (the program's table: these and `verify`). */
export async function run(argv: string[], ctx: CliContext, commands: Record<string, Subcommand> = SUBCOMMANDS): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' ? args[0] : undefined;
    if (topic !== undefined && !Object.hasOwn(commands, topic)) {
      ctx.stderr(`qcow2: unknown command '${topic}'\n${mainHelp()}`);
      return 1;
    }
    ctx.stdout(topic === undefined ? mainHelp() : commandHelp(topic));
    return name === undefined ? 1 : 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
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
