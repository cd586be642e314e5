#!/usr/bin/env node
// `qcow2 ublk ...` from the built dist/ (the global test setup builds it), for the ublk tests while
// the command is not in the program's table yet: `node test/ublk/entry.mjs ublk add ...`.
import { run, SUBCOMMANDS } from '../../dist/cli/main.js';
import { processContext } from '../../dist/cli/context.js';
import { ublk } from '../../dist/cli/ublk.js';

process.exitCode = await run(process.argv.slice(2), processContext(), { ...SUBCOMMANDS, ublk });
