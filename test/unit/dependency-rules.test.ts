/**
 * The dependency rules of src/ (.dependency-cruiser.cjs): no circular imports, the product never
 * imports the verification wing (but for the `verify` command entry), the engine contract imports
 * no engine and nothing above it, the file layer stands at the bottom, the shared QCOW2 semantics
 * import no engine, the engines never import each other, the product opens engines only through
 * the composition root (src/device/), the codecs are pure, nothing imports test/. Checked by dependency-cruiser, as
 * `npm run depcheck` runs it; and, so that the check cannot pass by seeing nothing, on a small tree
 * with deliberate violations, which it must report.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const config = join(root, '.dependency-cruiser.cjs');

interface Cruise {
  modules: { source: string; dependencies: { resolved: string; dependencyTypes: string[] }[] }[];
  summary: { violations: { rule: { name: string }; from: string; to: string; cycle?: { name: string }[] }[] };
}

/** Runs depcruise on `dir`/src with the project's rules, as `npm run depcheck` does. */
function cruise(dir: string): Cruise {
  const r = spawnSync(process.execPath, [bin, 'src', '--config', config, '--output-type', 'json'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (!r.stdout) throw new Error(`depcruise printed nothing (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Cruise;
}

const describeViolation = (v: Cruise['summary']['violations'][number]) =>
  `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`;

function edges(c: Cruise, from: string): Map<string, string[]> {
  return new Map(c.modules.find((m) => m.source === from)?.dependencies.map((d) => [d.resolved, d.dependencyTypes]) ?? []);
}

describe('dependency rules', () => {
  it('src/ breaks none of them', () => {
    const c = cruise(root);
    // The imports are really seen: `.js` suffixes resolve to the .ts files, dynamic imports count.
    expect(edges(c, 'src/main.ts').has('src/cli/main.ts')).toBe(true);
    expect(edges(c, 'src/main.ts').get('src/verification/verify/verify.ts')).toContain('dynamic-import');
    expect(c.modules.length).toBeGreaterThan(100);
    expect(c.summary.violations.map(describeViolation)).toEqual([]);
  });

  describe('on a tree with deliberate violations', () => {
    let dir = '';
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('reports each one', async () => {
      dir = await mkdtemp(join(tmpdir(), 'qcow2-depcruise-'));
      const files: Record<string, string> = {
        'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true }, include: ['src'] }),
        // A circle through a third file, one link a type-only import.
        'src/map/a.ts': "import type { B } from './b.js';\nexport const a = (b: B) => b;\n",
        'src/map/b.ts': "import { c } from './c.js';\nexport type B = typeof c;\n",
        'src/map/c.ts': "import { a } from './a.js';\nexport const c = a;\n",
        // The product reaching into the wing; the verify entry may.
        'src/verification/wing.ts': 'export const wing = 1;\n',
        'src/cli/info.ts': "import { wing } from '../verification/wing.js';\nexport const info = wing;\n",
        'src/main.ts': "export const verify = () => import('./verification/wing.js');\n",
        // The contract importing an engine; a codec doing I/O.
        'src/optimized/open.ts': 'export const openOptimized = 1;\n',
        'src/engine/open.ts': "import { openOptimized } from '../optimized/open.js';\nexport const open = openOptimized;\n",
        'src/format/header.ts': "import { readFileSync } from 'node:fs';\nexport const h = readFileSync;\n",
        // src/ importing a test helper.
        'test/support/helper.ts': 'export const helper = 1;\n',
        'src/io/file.ts': "import { helper } from '../../test/support/helper.js';\nexport const file = helper;\n",
        // The file layer reaching up; the shared semantics importing an engine; the engines
        // importing each other; a command opening an engine without the composition root.
        'src/io/up.ts': "import { open } from '../engine/open.js';\nexport const up = open;\n",
        'src/qcow2/rules.ts': "import { openOptimized } from '../optimized/open.js';\nexport const rules = openOptimized;\n",
        'src/reference/open.ts': "import { openOptimized } from '../optimized/open.js';\nexport const openReference = openOptimized;\n",
        'src/cli/map.ts': "import { openReference } from '../reference/open.js';\nexport const map = openReference;\n",
        'src/device/open.ts': "import { openOptimized } from '../optimized/open.js';\nexport const openImage = openOptimized;\n",
      };
      for (const [name, text] of Object.entries(files)) {
        await mkdir(dirname(join(dir, name)), { recursive: true });
        await writeFile(join(dir, name), text);
      }
      const found = cruise(dir).summary.violations.map(describeViolation).sort();
      expect(found).toEqual(
        [
          'codecs-are-pure: src/format/header.ts -> fs',
          'contract-not-engines: src/engine/open.ts -> src/optimized/open.ts',
          'contract-below-everything-but-io: src/engine/open.ts -> src/optimized/open.ts',
          'one-composition-root: src/engine/open.ts -> src/optimized/open.ts',
          'no-circular: src/map/a.ts -> src/map/b.ts (src/map/b.ts -> src/map/c.ts -> src/map/a.ts)',
          'product-not-verification: src/cli/info.ts -> src/verification/wing.ts',
          'src-not-test: src/io/file.ts -> test/support/helper.ts',
          'io-at-the-bottom: src/io/up.ts -> src/engine/open.ts',
          'shared-semantics-below-engines: src/qcow2/rules.ts -> src/optimized/open.ts',
          'one-composition-root: src/qcow2/rules.ts -> src/optimized/open.ts',
          'engines-apart: src/reference/open.ts -> src/optimized/open.ts',
          'one-composition-root: src/cli/map.ts -> src/reference/open.ts',
        ].sort(),
      );
    });
  });
});
