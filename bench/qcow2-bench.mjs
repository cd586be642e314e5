// Runs `qcow2 bench` from dist/ directly, for checkouts where src/cli/main.ts does not register
// the subcommand yet (lib.mjs uses ./bin/qcow2 bench as soon as `qcow2 help` lists it).
//   node bench/qcow2-bench.mjs [bench options] FILENAME
const { bench } = await import('../dist/cli/bench.js');
const { isQcow2Error } = await import('../dist/errors.js');
const ctx = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), isTTY: process.stdout.isTTY === true };
try {
  process.exitCode = await bench(process.argv.slice(2), ctx);
} catch (err) {
  process.stderr.write(`qcow2 bench: ${isQcow2Error(err) ? err.describe() : `internal error: ${err.message}`}\n`);
  process.exitCode = 1;
}
