/**
 * The fuzz targets in Jazzer.js's form, for libFuzzer-driven engines (Jazzer.js, and so
 * ClusterFuzzLite and OSS-Fuzz: .clusterfuzzlite/, fuzz/jazzer/*.js): `fuzz(data)` turns the
 * engine's bytes into a case, runs the target on it and judges it with the oracles of `qcow2 fuzz`
 * (oracle.ts runCase), and throws a JazzerFinding when they find something.
 *
 * The bytes choose the case in one of two forms, by the low bit of the first byte:
 * - 0, structure-aware: the rest of the bytes are the entropy the mutators (mutate.ts) draw from,
 *   four bytes a draw, zeros past the end: which seed image, which fields of the spec, which
 *   boundary values. A change libFuzzer makes to the bytes is a change of field or of value.
 * - 1, explicit: a seed index and a binary list of mutations (encodeCase), any bytes decoding to
 *   some list; how a saved regression (test/fuzz/cases) is handed to the engine as an input.
 * The seed images are the files of one folder (writeSeedDir), in the order of their names.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MutableSeed, randomMutations } from './mutate.js';
import { applyMutations, type Mutation } from './mutation.js';
import { type Finding, runCase, StrayWatcher } from './oracle.js';
import { toSeed } from './seeds.js';
import { type Regression, storedMutations } from './store.js';
import { targetNamed } from './targets.js';
import { pick, type Rng } from './values.js';

/** Where the entry points (fuzz/jazzer/*.js) find the seed images unless QCOW2_JAZZER_SEEDS says. */
export const DEFAULT_SEED_DIR = fileURLToPath(new URL('../../../fuzz/jazzer/seeds/', import.meta.url));
const SEED_SUFFIX = '.qcow2';
/** At most this many mutations in an explicit case. */
const MAX_EXPLICIT = 16;
const OPS = ['set', 'bytes', 'flip', 'truncate', 'splice'] as const;

/** A finding, as the engine sees it: a thrown error whose message holds each finding's signature. */
export class JazzerFinding extends Error {
  constructor(readonly findings: readonly Finding[]) {
    super(findings.map((f) => `${f.signature}\n  ${f.detail}`).join('\n'));
    this.name = 'JazzerFinding';
  }
}

/** A draw of 32 bits from the bytes, from `at` on: four bytes big-endian, zeros past the end. */
export function bytesRng(data: Uint8Array, at: number): Rng {
  let pos = at;
  return () => {
    let v = 0;
    for (let i = 0; i < 4; i++) v = (v << 8) | (data[pos + i] ?? 0);
    pos += 4;
    return v >>> 0;
  };
}

/** The case the bytes choose among `seeds` (never throws: any bytes are some case). */
export function decodeCase(data: Uint8Array, seeds: readonly MutableSeed[]): { seed: MutableSeed; mutations: Mutation[] } {
  if (seeds.length === 0) throw new Error('no seed images');
  if (((data[0] ?? 0) & 1) === 0) {
    const rng = bytesRng(data, 1);
    const seed = pick(rng, seeds);
    return { seed, mutations: randomMutations(rng, seed) };
  }
  const r = new Reader(data, 1);
  const seed = seeds[r.u8() % seeds.length]!;
  const mutations: Mutation[] = [];
  while (mutations.length < MAX_EXPLICIT && r.left() > 0) {
    const m = r.mutation();
    if (m === undefined) break;
    mutations.push(m);
  }
  return { seed, mutations };
}

/** The bytes of an explicit case: seed `seedIndex` with `mutations` (what decodeCase gives back, names aside). */
export function encodeCase(seedIndex: number, mutations: readonly Mutation[]): Uint8Array {
  if (mutations.length > MAX_EXPLICIT) throw new Error(`at most ${MAX_EXPLICIT} mutations`);
  const out: number[] = [1, seedIndex & 0xff];
  const u32 = (n: number) => {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${n} does not fit 32 bits`);
    out.push(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  };
  for (const m of mutations) {
    out.push(OPS.indexOf(m.op));
    switch (m.op) {
      case 'set': {
        u32(m.at);
        out.push(m.size - 1, m.shift, m.width - 1);
        let v = BigInt(m.value);
        const bytes: number[] = [];
        for (let i = 0; i < 8; i++, v >>= 8n) bytes.unshift(Number(v & 0xffn));
        out.push(...bytes);
        break;
      }
      case 'bytes': {
        const data = Buffer.from(m.hex, 'hex');
        u32(m.at);
        u32(data.byteLength);
        for (const b of data) out.push(b);
        break;
      }
      case 'flip':
        u32(m.at);
        out.push(m.bit);
        break;
      case 'truncate':
        u32(m.length);
        break;
      case 'splice':
        u32(m.at);
        u32(m.from);
        u32(m.length);
        break;
    }
  }
  return new Uint8Array(out);
}

class Reader {
  constructor(
    private readonly data: Uint8Array,
    private pos: number,
  ) {}

  left(): number {
    return this.data.byteLength - this.pos;
  }

  u8(): number {
    return this.data[this.pos++] ?? 0;
  }

  u32(): number {
    return ((this.u8() << 24) | (this.u8() << 16) | (this.u8() << 8) | this.u8()) >>> 0;
  }

  /** One mutation, or undefined when the bytes end inside it. */
  mutation(): Mutation | undefined {
    const op = OPS[this.u8() % OPS.length]!;
    const need = { set: 15, bytes: 8, flip: 5, truncate: 4, splice: 12 }[op];
    if (this.left() < need) return undefined;
    switch (op) {
      case 'set': {
        const at = this.u32();
        const size = (this.u8() % 8) + 1;
        const shift = this.u8() % (size * 8);
        const width = (this.u8() % (size * 8 - shift)) + 1;
        let value = 0n;
        for (let i = 0; i < 8; i++) value = (value << 8n) | BigInt(this.u8());
        value &= (1n << BigInt(width)) - 1n;
        return { op, field: 'jazzer', at, size, shift, width, value: `0x${value.toString(16)}` };
      }
      case 'bytes': {
        const at = this.u32();
        const length = Math.min(this.u32(), this.left());
        const hex = Buffer.from(this.data.subarray(this.pos, this.pos + length)).toString('hex');
        this.pos += length;
        return { op, field: 'jazzer', at, hex };
      }
      case 'flip':
        return { op, at: this.u32(), bit: this.u8() % 8 };
      case 'truncate':
        return { op, length: this.u32() };
      case 'splice':
        return { op, field: 'jazzer', at: this.u32(), from: this.u32(), length: this.u32() };
    }
  }
}

/** The seed images of a folder written by writeSeedDir, in the order of their names. */
export async function loadSeedDir(dir: string): Promise<MutableSeed[]> {
  const seeds: MutableSeed[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(SEED_SUFFIX)).sort()) {
    const seed = await toSeed(file.slice(0, -SEED_SUFFIX.length), new Uint8Array(await readFile(join(dir, file))));
    if (typeof seed !== 'string') seeds.push(seed);
  }
  return seeds;
}

/** Writes `seeds` as a seed folder (one file per image, named after its recipe). */
export async function writeSeedDir(dir: string, seeds: readonly MutableSeed[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const s of seeds) await writeFile(join(dir, `${s.name}${SEED_SUFFIX}`), s.bytes);
}

/** A saved regression as an explicit case over `seeds` (undefined when its seed is not among them). */
export function encodeRegression(r: Regression, seeds: readonly MutableSeed[]): Uint8Array | undefined {
  const index = seeds.findIndex((s) => s.name === r.seed);
  if (index < 0 || index > 0xff) return undefined;
  return encodeCase(index, storedMutations(r));
}

let watcher: StrayWatcher | undefined;
let placeholder: string | undefined;

/**
 * The `fuzz` function of one target: `seeds` loaded on the first call (by default the folder
 * QCOW2_JAZZER_SEEDS names, else fuzz/jazzer/seeds/), then each call is one case.
 */
export function jazzerTarget(name: string, seeds: () => Promise<readonly MutableSeed[]> = () => loadSeedDir(process.env['QCOW2_JAZZER_SEEDS'] ?? DEFAULT_SEED_DIR)): (data: Uint8Array) => Promise<void> {
  const target = targetNamed(name);
  if (!target) throw new Error(`no fuzz target '${name}'`);
  let loaded: Promise<readonly MutableSeed[]> | undefined;
  return async (data) => {
    loaded ??= seeds().then((s) => {
      if (s.length === 0) throw new Error('no seed images (build them with scripts/jazzer-seeds.mjs)');
      return s;
    });
    const { seed, mutations } = decodeCase(data, await loaded);
    if (!watcher) {
      watcher = new StrayWatcher();
      watcher.install();
    }
    if (!placeholder) {
      placeholder = join(mkdtempSync(join(tmpdir(), 'qcow2-jazzer-')), 'placeholder.qcow2');
      writeFileSync(placeholder, new Uint8Array(0));
    }
    const r = await runCase(target, applyMutations(seed.bytes, mutations), placeholder, watcher);
    if (r.findings.length > 0) throw new JazzerFinding(r.findings);
  };
}
