// Build step run by `npm ci` (prepare) and `npm run build`: compile src/ to dist/ with tsc (with
// .d.ts declarations, for the library's users) and copy the generated Kaitai parsers (plain ES
// modules and their declarations, committed under src/spec/generated/) along.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(root, 'dist'), { recursive: true, force: true });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
const gen = join(root, 'src', 'spec', 'generated');
if (existsSync(gen)) {
  // With their declarations: dist/'s own .d.ts files import them.
  cpSync(gen, join(root, 'dist', 'spec', 'generated'), { recursive: true });
}
