// The generated Kaitai parsers in src/spec/generated/ must match what scripts/gen-spec.mjs
// produces from spec/*.ksy (the generated files are committed; a stale file means someone
// edited a .ksy without regenerating, or edited generated code by hand).
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface GenSpecModule {
  generateAll(root: string): Promise<Record<string, string>>;
  compareWithDisk(
    root: string,
    files: Record<string, string>,
  ): { stale: string[]; missing: string[]; extra: string[] };
}

// A computed specifier keeps TypeScript from resolving the untyped .mjs script.
async function loadGenSpec(): Promise<GenSpecModule> {
  const url = pathToFileURL(join(root, 'scripts', 'gen-spec.mjs')).href;
  return (await import(url)) as GenSpecModule;
}

describe('src/spec/generated', () => {
  it('is up to date with spec/*.ksy (run `node scripts/gen-spec.mjs` to fix)', async () => {
    const gen = await loadGenSpec();
    const files = await gen.generateAll(root);
    const { stale, missing, extra } = gen.compareWithDisk(root, files);
    const problems = [
      ...stale.map((f) => `stale: ${f}`),
      ...missing.map((f) => `missing: ${f}`),
      ...extra.map((f) => `extra: ${f}`),
    ];
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('has one parser (.js + .d.ts) per .ksy file', async () => {
    const gen = await loadGenSpec();
    const files = await gen.generateAll(root);
    const ksy = readdirSync(join(root, 'spec')).filter((f) => f.endsWith('.ksy'));
    expect(ksy.length).toBeGreaterThanOrEqual(9);
    expect(Object.keys(files)).toHaveLength(ksy.length * 2);
    for (const [name, content] of Object.entries(files)) {
      expect(content.startsWith('// Generated from spec/'), name).toBe(true);
      expect(content).toContain('by scripts/gen-spec.mjs');
      if (name.endsWith('.js')) {
        expect(content).toContain("import KaitaiStream from 'kaitai-struct/KaitaiStream.js';");
        expect(content).toMatch(/\nexport const ([A-Z]\w*) = exports_\.\1;\n$/);
        expect(content).not.toContain('require(');
      }
    }
  });

  it('is deterministic', async () => {
    const gen = await loadGenSpec();
    const a = await gen.generateAll(root);
    const b = await gen.generateAll(root);
    expect(b).toEqual(a);
  });
});
