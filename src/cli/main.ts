/** Entry point of the `qcow2` command: dispatches to one file per subcommand. */
import { isQcow2Error } from '../errors.js';
import { type CliContext, processContext, type Subcommand } from './context.js';
import { bench } from './bench.js';
import { check } from './check.js';
import { compare } from './compare.js';
import { convert } from './convert.js';
import { create } from './create.js';
import { info } from './info.js';
import { io } from './io.js';
import { map } from './map.js';
import { snapshot } from './snapshot.js';
import { verify } from './verify.js';

const COMMANDS: Record<string, Subcommand> = { bench, check, compare, convert, create, info, io, map, snapshot, verify };

const USAGE = `usage: qcow2 COMMAND [OPTIONS] ...

Commands:
  bench [-c N] [-d N] [-s SIZE] [-S STEP] [-o OFF] [-w] [-t CACHE] [-f FMT] IMAGE  qemu-img bench's request loop on our engine
  check [-r leaks|all] [--output=human|json] [-f FMT] [-q] IMAGE  check (and repair) refcounts and metadata, as qemu-img check does
  compare [-f FMT] [-F FMT] [-s] [-q] A B  compare guest contents (exit 0 same, 1 different)
  convert [-f FMT] [-O raw|qcow2] [-o OPTS] [-c] [-p] [-t CACHE] IN OUT  copy guest contents into a new image
  create [-q] [-o OPTIONS] [-b FILE -F FMT] [-u] IMAGE [SIZE]  create an image as qemu-img create -f qcow2 does
  info [--output=human|json] IMAGE    describe an image, as qemu-img info does
  io [-f FMT] [-r] -c CMD... IMAGE    run qemu-io commands (read/write/discard/flush)
  map [--output=human|json] [-f FMT] IMAGE  where guest ranges live, as qemu-img map prints it
  snapshot [-l|-c|-a|-d NAME] IMAGE    list, create, apply or delete internal snapshots
  verify [--dir DIR] [--filter REGEX] [--runs N] [--round-trips N] [--crash-states N] [--seed N]
                                      corpus conformance, check parity, differential campaign, round trips, crash states
`;

export async function main(argv: string[], ctx: CliContext = processContext()): Promise<void> {
  process.exitCode = await run(argv, ctx);
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    ctx.stdout(USAGE);
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    ctx.stderr(`qcow2: unknown command '${name}'\n${USAGE}`);
    return 1;
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
