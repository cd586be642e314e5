// Build step run by `npm ci` (prepare) and `npm run build`: compile src/ to dist/ with tsc (with
// .d.ts declarations, for the library's users) and copy the generated Kaitai parsers (plain ES
// modules and their declarations, committed under src/spec/generated/) along.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, existsSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Built aside, then swapped in: a CLI started while another build runs finds a whole dist/.
const dist = join(root, 'dist');
const fresh = join(root, `.dist-build-${process.pid}`);
const old = join(root, `.dist-old-${process.pid}`);
rmSync(fresh, { recursive: true, force: true });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', fresh], { stdio: 'inherit' });
const gen = join(root, 'src', 'spec', 'generated');
if (existsSync(gen)) {
  // With their declarations: dist/'s own .d.ts files import them.
  cpSync(gen, join(fresh, 'spec', 'generated'), { recursive: true });
}
if (existsSync(dist)) renameSync(dist, old);
renameSync(fresh, dist);
rmSync(old, { recursive: true, force: true });
