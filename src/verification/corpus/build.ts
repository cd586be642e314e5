// Builds the QCOW2 image corpus (src/verification/corpus/recipes.ts) with QEMU's own tools, with a
// cache keyed by the recipes and the QEMU version. Used by the interop tests and by `qcow2 verify`, so this
// module must only depend on Node itself.

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runTool as run } from '../../tools/run.js';
import { RECIPES, type GuestRead, type RawSegment, type Recipe, type Step } from './recipes.js';
import { mulberry32 } from '../prng.js';

export type { GuestRead, Recipe } from './recipes.js';
export { RECIPES, FEATURE_VOCABULARY } from './recipes.js';

export interface CorpusImage {
  name: string;
  description: string;
  features: string[];
  /** Absolute directory holding the image and its side files. Run QEMU tools with this as cwd. */
  dir: string;
  /** Absolute path of the main image. */
  image: string;
  /** Absolute paths of backing files, data files and raw sources the recipe created. */
  sideFiles: string[];
  virtualSize: number;
  /** Guest byte ranges that must read back as a repeated byte. */
  reads: GuestRead[];
  /** Arguments that open the image for qemu-img check/map/compare/convert and qemu-io. */
  openArgs: string[];
  /** Extra arguments for `qemu-img info` (usually none). */
  infoArgs: string[];
  secret?: string;
  /** Exit code `qemu-img check` gives on this image (0 clean, 2 corrupt). */
  checkExitCode: number;
  /** Absolute path + format of a file with the same guest content. */
  equivalentTo?: { file: string; format: 'raw' | 'qcow2' };
}

export interface BuildOptions {
  /** Only build (and return) the recipes whose name passes. */
  filter?: (name: string) => boolean;
  log?: (line: string) => void;
  /** Parallel recipe builds (default 2). */
  concurrency?: number;
  /** Tool paths; default $QEMU_IMG / $QEMU_IO or the names on PATH. */
  qemuImg?: string;
  qemuIo?: string;
}

interface Manifest {
  formatVersion: number;
  key: string;
  qemuVersion: string;
  dir: string;
  images: Array<CorpusImage & { buildMs: number }>;
}

const MANIFEST = 'manifest.json';
const FORMAT_VERSION = 1;

/** `qemu-img --version` output; throws a clear error when the tool is missing. */
async function toolVersion(tool: string, label: string): Promise<string> {
  try {
    const r = await run(tool, ['--version']);
    if (r.code !== 0) throw new Error(`${label} --version failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${label} not found: install qemu-utils`);
    }
    throw err;
  }
}

export interface QemuTools {
  qemuImg: string;
  qemuIo: string;
  version: string;
}

/** Locate qemu-img and qemu-io; throws `qemu-img not found: install qemu-utils` if absent. */
export async function findQemuTools(opts: Pick<BuildOptions, 'qemuImg' | 'qemuIo'> = {}): Promise<QemuTools> {
  const qemuImg = opts.qemuImg ?? process.env['QEMU_IMG'] ?? 'qemu-img';
  const qemuIo = opts.qemuIo ?? process.env['QEMU_IO'] ?? 'qemu-io';
  const version = await toolVersion(qemuImg, 'qemu-img');
  const ioVersion = await toolVersion(qemuIo, 'qemu-io');
  return { qemuImg, qemuIo, version: `${version}\n${ioVersion}` };
}

function corpusKey(dir: string, qemuVersion: string): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ formatVersion: FORMAT_VERSION, dir, qemuVersion, recipes: RECIPES }));
  return h.digest('hex');
}

/**
 * Replace `{dir}` / `{image}`. Inside QEMU option strings (`key=value,...`) a comma in the path
 * must be doubled.
 */
const subst = (s: string, vars: Record<string, string>): string =>
  s.replace(/\{(dir|image)\}/g, (m, k: string) => {
    const v = vars[k];
    if (v === undefined) return m;
    return s.includes('=') ? v.replace(/,/g, ',,') : v;
  });


const WORDS = 'qcow2 cluster refcount table snapshot bitmap backing sector guest host offset zero'.split(' ');

function segmentBytes(seg: RawSegment): Buffer {
  const buf = Buffer.alloc(seg.length);
  const next = mulberry32(seg.seed);
  if (seg.fill === 'random') {
    for (let i = 0; i + 4 <= buf.length; i += 4) buf.writeUInt32LE(next(), i);
    for (let i = buf.length & ~3; i < buf.length; i++) buf[i] = next() & 0xff;
  } else if (seg.fill === 'text') {
    let pos = 0;
    let line = 0;
    while (pos < buf.length) {
      const words = Array.from({ length: 8 }, () => WORDS[next() % WORDS.length]).join(' ');
      pos += buf.write(`${String(line++).padStart(6, '0')}: ${words}\n`, pos, 'latin1');
    }
  }
  return buf;
}

function genRaw(path: string, size: number, segments: RawSegment[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const seg of segments) {
      if (seg.fill === 'zero') continue;
      writeSync(fd, segmentBytes(seg), 0, seg.length, seg.offset);
    }
  } finally {
    closeSync(fd);
  }
  // Extend to full size (sparse tail).
  const fd2 = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd2, b, 0, 1, size - 1) === 0) writeSync(fd2, b, 0, 1, size - 1);
  } finally {
    closeSync(fd2);
  }
}

function assertByte(path: string, offset: number, mask: number, value: number, why: string): void {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, offset) !== 1) throw new Error(`${path}: cannot read byte ${offset} (${why})`);
    const got = (b[0] ?? 0) & mask;
    if (got !== value) {
      throw new Error(`${path}: byte ${offset} & 0x${mask.toString(16)} = ${got}, expected ${value} (${why})`);
    }
  } finally {
    closeSync(fd);
  }
}

function describeStep(step: Step): string {
  switch (step.tool) {
    case 'qemu-img':
    case 'qemu-io':
      return `${step.tool} ${step.args.map((a) => (/[\s']/.test(a) ? `'${a}'` : a)).join(' ')}`;
    case 'gen-raw':
      return `gen-raw ${step.file} (${step.size} bytes, ${step.segments.length} segments)`;
    case 'assert-byte':
      return `assert-byte ${step.file}[${step.offset}] & ${step.mask} == ${step.value}`;
  }
}

async function runStep(step: Step, cwd: string, tools: QemuTools, recipe: Recipe): Promise<void> {
  const vars = { dir: cwd, image: join(cwd, recipe.image) };
  switch (step.tool) {
    case 'qemu-img':
    case 'qemu-io': {
      const bin = step.tool === 'qemu-img' ? tools.qemuImg : tools.qemuIo;
      const args = step.args.map((a) => subst(a, vars));
      let r = await run(bin, args, cwd);
      if (step.tool === 'qemu-img' && step.retry) {
        const when = new RegExp(step.retry.when);
        for (let i = 0; i < step.retry.times && r.code !== 0 && when.test(r.stdout + r.stderr); i++) {
          await new Promise((res) => setTimeout(res, 100 * (i + 1)));
          r = await run(bin, args, cwd);
        }
      }
      const expectSignal = step.tool === 'qemu-io' ? step.expectSignal : undefined;
      const ok = expectSignal ? r.signal === expectSignal : r.code === 0;
      if (!ok) {
        throw new Error(
          `corpus recipe ${recipe.name}: ${describeStep(step)} ` +
            `${r.signal ? `died of ${r.signal}` : `exited ${r.code}`}` +
            `${expectSignal ? ` (expected ${expectSignal})` : ''}\n${r.stdout}${r.stderr}`,
        );
      }
      return;
    }
    case 'gen-raw':
      genRaw(join(cwd, step.file), step.size, step.segments);
      return;
    case 'assert-byte':
      assertByte(join(cwd, step.file), step.offset, step.mask, step.value, `${recipe.name}: ${step.why}`);
      return;
  }
}

function toImage(recipe: Recipe, root: string): CorpusImage {
  const dir = join(root, recipe.name);
  const image = join(dir, recipe.image);
  const vars = { dir, image };
  const img: CorpusImage = {
    name: recipe.name,
    description: recipe.description,
    features: [...recipe.features],
    dir,
    image,
    sideFiles: recipe.sideFiles.map((f) => join(dir, f)),
    virtualSize: recipe.virtualSize,
    reads: recipe.reads.map((r) => ({ ...r })),
    openArgs: recipe.openArgs ? recipe.openArgs.map((a) => subst(a, vars)) : ['-f', 'qcow2', image],
    infoArgs: recipe.infoArgs ? [...recipe.infoArgs] : [],
    checkExitCode: recipe.checkExitCode,
  };
  if (recipe.secret !== undefined) img.secret = recipe.secret;
  if (recipe.equivalentTo) img.equivalentTo = { file: join(dir, recipe.equivalentTo.file), format: recipe.equivalentTo.format };
  return img;
}

async function buildRecipe(recipe: Recipe, root: string, tools: QemuTools): Promise<number> {
  const t0 = Date.now();
  const dir = join(root, recipe.name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const step of recipe.steps) await runStep(step, dir, tools, recipe);
  for (const f of [recipe.image, ...recipe.sideFiles]) {
    await stat(join(dir, f)).catch(() => {
      throw new Error(`corpus recipe ${recipe.name}: expected file ${f} was not created`);
    });
  }
  return Date.now() - t0;
}

async function readManifest(path: string): Promise<Manifest | null> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Manifest;
    return m.formatVersion === FORMAT_VERSION && Array.isArray(m.images) ? m : null;
  } catch {
    return null;
  }
}

async function filesExist(img: CorpusImage): Promise<boolean> {
  try {
    await Promise.all([img.image, ...img.sideFiles].map((f) => stat(f)));
    return true;
  } catch {
    return false;
  }
}

/**
 * Build (or reuse) the corpus under `dir`. Images already built with the same recipes and QEMU
 * version are reused; missing or stale ones are rebuilt. Returns the selected images in recipe
 * order.
 */
export async function buildCorpus(dir: string, opts: BuildOptions = {}): Promise<CorpusImage[]> {
  const root = resolve(dir);
  const log = opts.log ?? (() => {});
  const tools = await findQemuTools(opts);
  await mkdir(root, { recursive: true });
  const unlock = await lock(root, log);
  try {
    return await buildLocked(root, tools, opts, log);
  } finally {
    await unlock();
  }
}

/** A directory lock (`<root>/.lock`, holding the owner's pid) so concurrent builders take turns. */
async function lock(root: string, log: (line: string) => void): Promise<() => Promise<void>> {
  const path = join(root, '.lock');
  const deadline = Date.now() + 10 * 60_000;
  let announced = false;
  for (;;) {
    try {
      await mkdir(path);
      await writeFile(join(path, 'pid'), String(process.pid));
      return () => rm(path, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(await readFile(join(path, 'pid'), 'utf8').catch(() => ''));
    if (pid > 0 && !processAlive(pid)) {
      log(`corpus: removing stale lock of dead process ${pid}`);
      await rm(path, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`corpus: timed out waiting for lock ${path}`);
    if (!announced) log(`corpus: waiting for another build (lock ${path})`);
    announced = true;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function buildLocked(
  root: string,
  tools: QemuTools,
  opts: BuildOptions,
  log: (line: string) => void,
): Promise<CorpusImage[]> {
  const key = corpusKey(root, tools.version);
  const manifestPath = join(root, MANIFEST);

  const old = await readManifest(manifestPath);
  const built = new Map<string, CorpusImage & { buildMs: number }>();
  if (old && old.key === key) {
    for (const img of old.images) built.set(img.name, img);
  } else if (old) {
    log(`corpus: recipes or QEMU version changed; rebuilding in ${root}`);
    // Drop directories of recipes that no longer exist (only ones this builder created).
    const current = new Set(RECIPES.map((r) => r.name));
    for (const img of old.images) {
      if (!current.has(img.name) && /^[\w.-]+$/.test(img.name)) {
        await rm(join(root, img.name), { recursive: true, force: true });
      }
    }
  }

  const wanted = RECIPES.filter((r) => !opts.filter || opts.filter(r.name));
  const todo: Recipe[] = [];
  for (const r of wanted) {
    const have = built.get(r.name);
    if (!have || !(await filesExist(have))) {
      built.delete(r.name);
      todo.push(r);
    }
  }

  if (todo.length > 0) {
    log(`corpus: building ${todo.length} image(s) in ${root} with ${tools.version.split('\n')[0]}`);
    const t0 = Date.now();
    const queue = [...todo];
    const errors: Error[] = [];
    const worker = async (): Promise<void> => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        if (errors.length > 0) return;
        try {
          const ms = await buildRecipe(r, root, tools);
          built.set(r.name, { ...toImage(r, root), buildMs: ms });
          log(`corpus: ${r.name} (${ms} ms)`);
        } catch (err) {
          errors.push(err instanceof Error ? err : new Error(String(err)));
        }
      }
    };
    const n = Math.max(1, opts.concurrency ?? 2);
    await Promise.all(Array.from({ length: n }, () => worker()));
    // Record what succeeded even when something failed, so a retry only rebuilds the rest.
    await writeManifest(manifestPath, { formatVersion: FORMAT_VERSION, key, qemuVersion: tools.version, dir: root, images: ordered(built) });
    if (errors.length > 0) throw errors[0];
    log(`corpus: built ${todo.length} image(s) in ${Date.now() - t0} ms`);
  } else {
    log(`corpus: reusing ${wanted.length} cached image(s) in ${root}`);
  }

  return wanted.map((r) => {
    const img = built.get(r.name);
    if (!img) throw new Error(`corpus: ${r.name} missing after build`);
    const { buildMs: _ms, ...rest } = img;
    return rest;
  });
}

function ordered<T extends { name: string }>(m: Map<string, T>): T[] {
  const order = new Map(RECIPES.map((r, i) => [r.name, i]));
  return [...m.values()].sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
}

async function writeManifest(path: string, m: Manifest): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(m, null, 2)}\n`);
  await rename(tmp, path);
}
