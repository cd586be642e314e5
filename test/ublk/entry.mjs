#!/usr/bin/env node
// `qcow2 ublk ...` from a built dist/: `node test/ublk/entry.mjs ublk add ...` does what
// `bin/qcow2 ublk add ...` does, loading dist/cli/ublk.js alone instead of every command (used by
// bench/ snapshots of dist/). Errors are reported as the program reports them (src/cli/main.ts:
// one line, exit status 1).
import { ublk } from '../../dist/cli/ublk.js';
import { processContext } from '../../dist/cli/context.js';
import { isQcow2Error } from '../../dist/errors.js';

const [name, ...args] = process.argv.slice(2);
if (name !== 'ublk') {
  process.stderr.write('usage: node test/ublk/entry.mjs ublk add|list|del|recover ...\n');
  process.exit(2);
}
try {
  process.exitCode = await ublk(args, processContext());
} catch (err) {
  process.stderr.write(isQcow2Error(err) ? `qcow2 ublk: ${err.describe()}\n` : `qcow2 ublk: internal error: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
}
