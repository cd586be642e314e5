// Writes README.md's command table from src/cli/commands.ts (the one description of the
// subcommands), between the marker comments it defines; `--check` only compares, and exits 1 when
// the README differs. Loads the built module: run `npm run build` first (the tests' global setup
// builds dist/; test/unit/cli-commands.test.ts runs the check).
//
//   node scripts/gen-readme.mjs [--check]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'commands.js');
let commands;
try {
  commands = await import(pathToFileURL(built).href);
} catch (err) {
  console.error(`gen-readme: cannot load ${built} (${err.message}); run \`npm run build\` first`);
  process.exit(2);
}
const path = join(root, 'README.md');
const readme = readFileSync(path, 'utf8');
const wanted = commands.spliceReadmeTable(readme);
if (process.argv.includes('--check')) {
  if (wanted !== readme) {
    console.error('README.md: the command table differs from src/cli/commands.ts; run `node scripts/gen-readme.mjs`');
    process.exit(1);
  }
} else if (wanted !== readme) {
  writeFileSync(path, wanted);
  console.log('README.md: command table written');
}
