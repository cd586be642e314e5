// The fuzzer's field catalogue (src/verification/fuzz/fields.ts) against spec/*.ksy: every `seq`
// field and every `instances` value of every type of every .ksy file has a mutator, and every
// catalogue entry names such a field. The list comes from the .ksy files themselves.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FIELDS } from '../../src/verification/fuzz/fields.js';
import { applicableFields } from '../../src/verification/fuzz/mutate.js';
import { toSeed } from '../../src/verification/fuzz/seeds.js';
import { getCorpus, REPO_ROOT } from '../interop/corpus.js';
import { readFile } from 'node:fs/promises';

interface KsyType {
  seq?: Array<{ id: string }>;
  instances?: Record<string, unknown>;
  types?: Record<string, KsyType>;
}

function ksyFields(): string[] {
  const dir = join(REPO_ROOT, 'spec');
  const keys: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ksy')).sort()) {
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as KsyType & { meta: { id: string } };
    const ksy = doc.meta.id;
    const walk = (typeName: string, t: KsyType) => {
      for (const s of t.seq ?? []) keys.push(`${ksy}/${typeName}/${s.id}`);
      for (const id of Object.keys(t.instances ?? {})) keys.push(`${ksy}/${typeName}/${id}`);
      for (const [name, sub] of Object.entries(t.types ?? {})) walk(name, sub);
    };
    walk(ksy, doc);
  }
  return keys;
}

describe('fuzz field catalogue', () => {
  const fromSpec = ksyFields();
  const catalogued = FIELDS.map((f) => f.key);

  it('finds the fields of every .ksy file', () => {
    expect(fromSpec.length).toBeGreaterThan(150);
    expect(new Set(fromSpec.map((k) => k.split('/')[0])).size).toBe(readdirSync(join(REPO_ROOT, 'spec')).filter((f) => f.endsWith('.ksy')).length);
  });

  it('has a mutator for every field and derived value of spec/', () => {
    const missing = fromSpec.filter((k) => !catalogued.includes(k));
    expect(missing).toEqual([]);
  });

  it('names no field the spec does not have, and each once', () => {
    expect(catalogued.filter((k) => !fromSpec.includes(k))).toEqual([]);
    expect(catalogued.filter((k, i) => catalogued.indexOf(k) !== i)).toEqual([]);
  });

  it('reaches every field on some image of the QEMU-built corpus', async () => {
    const reached = new Set<string>();
    for (const image of await getCorpus()) {
      const bytes = new Uint8Array(await readFile(image.image));
      if (bytes.byteLength > 16 * 1024 * 1024) continue;
      const seed = await toSeed(image.name, bytes);
      if (typeof seed === 'string') continue;
      for (const { field } of applicableFields(seed.map)) reached.add(field.key);
    }
    expect(catalogued.filter((k) => !reached.has(k))).toEqual([]);
  });
});
