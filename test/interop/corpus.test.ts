// Checks the QEMU image corpus itself, with QEMU as the judge: every recipe's image exists,
// `qemu-img info` reads it, `qemu-img check` gives the expected verdict, the guest content facts
// (`reads`) hold under `qemu-io -r`, `qemu-img compare` agrees with `equivalentTo`, and every
// feature the recipe claims is really present (and the main boolean features it does not claim are
// absent).
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_VOCABULARY, RECIPES, type Recipe } from '../../src/verification/corpus/recipes.js';
import { runTool } from '../../src/tools/run.js';
import { getCorpus, type CorpusImage } from './corpus.js';

const QEMU_IMG = process.env['QEMU_IMG'] ?? 'qemu-img';
const QEMU_IO = process.env['QEMU_IO'] ?? 'qemu-io';
const GiB = 1024 ** 3;

const run = (cmd: string, args: string[], cwd: string) => runTool(cmd, args, cwd);

async function runOk(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

type Json = any;

interface MapExtent {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

interface Facts {
  img: CorpusImage;
  recipe: Recipe;
  info: Json;
  chain: Json[];
  check: Json;
  checkCode: number | null;
  map: MapExtent[];
  byte79: number;
}

function byteAt(path: string, offset: number): number {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    return b[0] ?? 0;
  } finally {
    closeSync(fd);
  }
}

async function gather(img: CorpusImage, recipe: Recipe): Promise<Facts> {
  const info = JSON.parse(await runOk(QEMU_IMG, ['info', '--output=json', ...img.infoArgs, img.image], img.dir)) as Json;
  const chain = JSON.parse(
    await runOk(QEMU_IMG, ['info', '--output=json', '--backing-chain', ...img.infoArgs, img.image], img.dir),
  ) as Json[];
  const c = await run(QEMU_IMG, ['check', '--output=json', ...img.openArgs], img.dir);
  let check: Json = {};
  try {
    check = JSON.parse(c.stdout);
  } catch {
    check = { unparsable: c.stdout, stderr: c.stderr };
  }
  const map = JSON.parse(await runOk(QEMU_IMG, ['map', '--output=json', ...img.openArgs], img.dir)) as MapExtent[];
  return { img, recipe, info, chain, check, checkCode: c.code, map, byte79: byteAt(img.image, 79) };
}

const fmtData = (f: Facts): Json => f.info['format-specific']?.data ?? {};

function l2Span(f: Facts): number {
  const cs = f.info['cluster-size'] as number;
  return (cs / (fmtData(f)['extended-l2'] ? 16 : 8)) * cs;
}

const crosses = (off: number, len: number, unit: number): boolean => Math.floor(off / unit) !== Math.floor((off + len - 1) / unit);

/** Verify one claimed feature; returns an error message or null. */
function checkFeature(feature: string, f: Facts): string | null {
  const [key, value] = feature.includes('=') ? (feature.split('=', 2) as [string, string]) : [feature, ''];
  const d = fmtData(f);
  const cs = f.info['cluster-size'] as number;
  const expectEq = (what: string, got: unknown, want: unknown): string | null =>
    got === want ? null : `${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
  const ioCommands = f.recipe.steps.flatMap((s) => (s.tool === 'qemu-io' ? s.args : []));
  switch (key) {
    case 'compat':
      return expectEq('compat', d.compat, value);
    case 'cluster_size':
      return expectEq('cluster-size', cs, Number(value));
    case 'refcount_bits':
      return expectEq('refcount-bits', d['refcount-bits'], Number(value));
    case 'compression_type':
      return expectEq('compression-type', d['compression-type'], value);
    case 'compressed_clusters':
      return (f.check['compressed-clusters'] ?? 0) > 0 ? null : `no compressed clusters: ${JSON.stringify(f.check)}`;
    case 'extended_l2':
      return expectEq('extended-l2', d['extended-l2'], true);
    case 'subcluster_extents':
      return f.map.some((e) => e.depth === 0 && (e.start % cs !== 0 || e.length % cs !== 0))
        ? null
        : 'qemu-img map shows no sub-cluster extents';
    case 'data_file':
      return typeof d['data-file'] === 'string' ? null : 'no data-file';
    case 'data_file_raw':
      return expectEq('data-file-raw', d['data-file-raw'], true);
    case 'data_file_relative':
      return typeof d['data-file'] === 'string' && !isAbsolute(d['data-file']) ? null : `data-file ${d['data-file']} not relative`;
    case 'backing':
      return (
        expectEq('backing-filename-format', f.info['backing-filename-format'], value) ??
        expectEq('backing file format', f.chain[1]?.format, value)
      );
    case 'backing_depth':
      return expectEq('backing chain depth', f.chain.length - 1, Number(value));
    case 'overlay_larger_than_backing': {
      const below = f.chain[1]?.['virtual-size'] as number | undefined;
      return below !== undefined && below < f.info['virtual-size'] ? null : `backing size ${below} not smaller`;
    }
    case 'snapshots':
      return expectEq('snapshot count', (f.info.snapshots ?? []).length, Number(value));
    case 'bitmaps':
      return expectEq('bitmap count', (d.bitmaps ?? []).length, Number(value));
    case 'disabled_bitmaps':
      return expectEq(
        'disabled bitmap count',
        (d.bitmaps ?? []).filter((b: Json) => !(b.flags as string[]).includes('auto')).length,
        Number(value),
      );
    case 'lazy_refcounts':
      return expectEq('lazy-refcounts', d['lazy-refcounts'], true);
    case 'dirty':
      return expectEq('dirty-flag', f.info['dirty-flag'], true) ?? expectEq('header byte 79 bit 0', f.byte79 & 1, 1);
    case 'preallocation':
      if (value !== 'metadata') return `unknown preallocation ${value}`;
      return f.check['allocated-clusters'] === f.check['total-clusters']
        ? null
        : `not fully allocated: ${f.check['allocated-clusters']}/${f.check['total-clusters']}`;
    case 'zero_writes':
      return ioCommands.some((a) => a.startsWith('write -z')) && f.recipe.reads.some((r) => r.pattern === 0)
        ? null
        : 'no write -z with a zero read fact';
    case 'zero_clusters':
      return f.map.some((e) => e.depth === 0 && e.present && e.zero && !e.data) ? null : 'map shows no zero clusters';
    case 'discard':
      return ioCommands.some((a) => a.startsWith('discard ')) ? null : 'no discard command';
    case 'unaligned_writes':
      return f.recipe.reads.some((r) => r.offset % 512 !== 0 || r.length % 512 !== 0) ? null : 'no unaligned read fact';
    case 'cross_cluster_writes':
      return f.recipe.reads.some((r) => r.pattern !== 0 && crosses(r.offset, r.length, cs)) ? null : 'no cluster-crossing data';
    case 'cross_l2_writes':
      return f.recipe.reads.some((r) => r.pattern !== 0 && crosses(r.offset, r.length, l2Span(f)))
        ? null
        : `no data crossing an L2 boundary (span ${l2Span(f)})`;
    case 'above_4gib':
      return f.map.some((e) => e.depth === 0 && e.data && e.start >= 4 * GiB) ? null : 'no data above 4 GiB';
    case 'encryption':
      return expectEq('encrypted', f.info.encrypted, true) ?? expectEq('encrypt.format', d.encrypt?.format, value);
    case 'converted':
      return f.img.equivalentTo ? null : 'converted image without equivalentTo';
    default:
      return `unknown feature ${feature}`;
  }
}

/** Features whose absence is also checked when not claimed. */
function checkAbsent(f: Facts): string[] {
  const claims = new Set(f.img.features.map((x) => x.split('=')[0]));
  const d = fmtData(f);
  const errs: string[] = [];
  if (!claims.has('extended_l2') && d['extended-l2'] === true) errs.push('extended-l2 set but not claimed');
  if (!claims.has('data_file') && d['data-file'] !== undefined) errs.push('data-file present but not claimed');
  if (!claims.has('lazy_refcounts') && d['lazy-refcounts'] === true) errs.push('lazy-refcounts set but not claimed');
  const v3 = d.compat === '1.1'; // a v2 header is 72 bytes: byte 79 is not a feature field there
  if (!claims.has('dirty') && (f.info['dirty-flag'] === true || (v3 && (f.byte79 & 1) !== 0))) errs.push('dirty but not claimed');
  if (!claims.has('encryption') && f.info.encrypted === true) errs.push('encrypted but not claimed');
  if (!claims.has('snapshots') && (f.info.snapshots ?? []).length > 0) errs.push('snapshots present but not claimed');
  if (!claims.has('bitmaps') && (d.bitmaps ?? []).length > 0) errs.push('bitmaps present but not claimed');
  if (!claims.has('backing_depth') && f.chain.length > 1) errs.push('backing file present but not claimed');
  if (!claims.has('compressed_clusters') && (f.check['compressed-clusters'] ?? 0) > 0) errs.push('compressed clusters not claimed');
  if (d.corrupt === true) errs.push('corrupt bit set');
  return errs;
}

describe('QEMU image corpus', () => {
  let images: CorpusImage[] = [];
  const byName = new Map<string, CorpusImage>();
  // Errors are kept and rethrown inside each test, so that a corpus that cannot be built (e.g. no
  // qemu-img in CI) fails every test instead of leaving them reported as skipped.
  let corpusError: unknown;

  beforeAll(async () => {
    try {
      images = await getCorpus();
      for (const i of images) byName.set(i.name, i);
    } catch (err) {
      corpusError = err;
    }
  });

  it('builds', () => {
    if (corpusError) throw corpusError;
    expect(images.length).toBe(RECIPES.length);
  });

  it('has one image per recipe, with unique names and a known feature vocabulary', () => {
    if (corpusError) throw corpusError;
    expect(images.map((i) => i.name)).toEqual(RECIPES.map((r) => r.name));
    expect(new Set(RECIPES.map((r) => r.name)).size).toBe(RECIPES.length);
    const known = (f: string): boolean => FEATURE_VOCABULARY.includes(f.includes('=') ? `${f.split('=')[0]}=` : f);
    const unknown = RECIPES.flatMap((r) => r.features.filter((f) => !known(f)).map((f) => `${r.name}: ${f}`));
    expect(unknown).toEqual([]);
  });

  it('covers the required feature matrix', () => {
    if (corpusError) throw corpusError;
    const all = new Set(RECIPES.flatMap((r) => r.features));
    const required = [
      'compat=0.10',
      'compat=1.1',
      ...[512, 4096, 65536, 2097152].map((c) => `cluster_size=${c}`),
      ...[1, 2, 4, 8, 16, 32, 64].map((b) => `refcount_bits=${b}`),
      'compression_type=zlib',
      'compression_type=zstd',
      'compressed_clusters',
      'converted',
      'extended_l2',
      'data_file',
      'data_file_raw',
      'backing=raw',
      'backing=qcow2',
      'backing_depth=3',
      'overlay_larger_than_backing',
      'snapshots=2',
      'bitmaps=2',
      'lazy_refcounts',
      'dirty',
      'preallocation=metadata',
      'discard',
      'zero_writes',
      'zero_clusters',
      'above_4gib',
      'encryption=luks',
    ];
    expect(required.filter((f) => !all.has(f))).toEqual([]);
    // Extended L2 with both 64 KiB and 2 MiB clusters; snapshots on v2 and v3.
    const has = (...fs: string[]): boolean => RECIPES.some((r) => fs.every((f) => r.features.includes(f)));
    expect(has('extended_l2', 'cluster_size=65536')).toBe(true);
    expect(has('extended_l2', 'cluster_size=2097152')).toBe(true);
    expect(has('snapshots=2', 'compat=0.10')).toBe(true);
    expect(has('snapshots=2', 'compat=1.1')).toBe(true);
    expect(RECIPES.some((r) => r.virtualSize >= 2 ** 40)).toBe(true);
  });

  for (const recipe of RECIPES) {
    describe(recipe.name, () => {
      let factsOrError: Facts | Error | undefined;
      const need = (): Facts => {
        if (corpusError) throw corpusError;
        if (factsOrError instanceof Error) throw factsOrError;
        if (!factsOrError) throw new Error(`no facts gathered for ${recipe.name}`);
        return factsOrError;
      };

      beforeAll(async () => {
        if (corpusError) return;
        try {
          const img = byName.get(recipe.name);
          if (!img) throw new Error(`corpus image ${recipe.name} missing`);
          factsOrError = await gather(img, recipe);
        } catch (err) {
          factsOrError = err instanceof Error ? err : new Error(String(err));
        }
      });

      it('exists with its side files', () => {
        const facts = need();
        const img = facts.img;
        for (const f of [img.image, ...img.sideFiles]) expect(existsSync(f), f).toBe(true);
        expect(facts.info.format).toBe('qcow2');
        expect(facts.info['virtual-size']).toBe(recipe.virtualSize);
      });

      it(`qemu-img check exits ${recipe.checkExitCode}`, () => {
        const facts = need();
        expect(facts.checkCode, JSON.stringify(facts.check)).toBe(recipe.checkExitCode);
        if (recipe.checkExitCode === 0) {
          expect(facts.check['check-errors']).toBe(0);
          expect(facts.check.corruptions ?? 0).toBe(0);
          expect(facts.check.leaks ?? 0).toBe(0);
        } else {
          expect(facts.check.corruptions ?? 0).toBeGreaterThan(0);
        }
      });

      it('has the features it claims', () => {
        const facts = need();
        const errors = recipe.features
          .map((feat) => {
            const e = checkFeature(feat, facts);
            return e ? `${feat}: ${e}` : null;
          })
          .filter((e): e is string => e !== null);
        expect([...errors, ...checkAbsent(facts)]).toEqual([]);
      });

      it('reads back the expected guest data (qemu-io -r)', async () => {
        const facts = need();
        expect(recipe.reads.length).toBeGreaterThan(recipe.equivalentTo ? -1 : 0);
        if (recipe.reads.length === 0) return;
        const cmds = recipe.reads.flatMap((r) => ['-c', `read -P 0x${r.pattern.toString(16)} ${r.offset} ${r.length}`]);
        const r = await run(QEMU_IO, ['-r', ...cmds, ...facts.img.openArgs], facts.img.dir);
        expect(r.stdout + r.stderr).not.toMatch(/Pattern verification failed|failed/);
        expect(r.code).toBe(0);
      });

      if (recipe.equivalentTo) {
        it(`has the same guest content as ${recipe.equivalentTo.file}`, async () => {
          const facts = need();
          const eq = facts.img.equivalentTo;
          if (!eq) throw new Error('equivalentTo missing from manifest');
          const r = await run(QEMU_IMG, ['compare', '-f', 'qcow2', '-F', eq.format, facts.img.image, eq.file], facts.img.dir);
          expect(r.stdout + r.stderr).toContain('Images are identical');
          expect(r.code).toBe(0);
        });
      }

      if (recipe.checkExitCode !== 0) {
        it('is left untouched by qemu-img check and info (still dirty)', async () => {
          const facts = need();
          await run(QEMU_IMG, ['check', ...facts.img.openArgs], facts.img.dir);
          expect(byteAt(facts.img.image, 79) & 1).toBe(1);
        });
      }
    });
  }
});
