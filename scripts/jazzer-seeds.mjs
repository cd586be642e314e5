#!/usr/bin/env node
// What the Jazzer.js fuzz targets (fuzz/jazzer/*.js) start from, made from the QEMU-built corpus
// (built with qemu-img unless cached) and the saved regressions:
//   fuzz/jazzer/seeds/NAME.qcow2        the seed images the bytes choose among
//   fuzz/jazzer/inputs/FUZZER/NAME      first inputs per fuzz target: each saved regression of the
//                                       target not marked known, as an explicit case (src/verification/fuzz/jazzer.ts),
//                                       and a few structure-aware ones
// .clusterfuzzlite/build.sh zips each inputs/FUZZER as FUZZER_seed_corpus.zip. Needs `npm run build`.
//
//   node scripts/jazzer-seeds.mjs [--corpus-cache DIR] [--out DIR]
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', 'verification', 'fuzz', p));
const { CORPUS_CACHE } = await dist('command.js');
const { corpusSeeds } = await dist('seeds.js');
const { loadRegressions } = await dist('store.js');
const { TARGETS } = await dist('targets.js');
const { encodeRegression, loadSeedDir, writeSeedDir } = await dist('jazzer.js');

const { values } = parseArgs({ options: { 'corpus-cache': { type: 'string' }, out: { type: 'string' } } });
const out = values.out ?? join(root, 'fuzz', 'jazzer');
const seedDir = join(out, 'seeds');
await rm(seedDir, { recursive: true, force: true });
await writeSeedDir(seedDir, await corpusSeeds(values['corpus-cache'] ?? CORPUS_CACHE, (line) => process.stderr.write(`${line}\n`)));
// The order the fuzz targets see them in.
const seeds = await loadSeedDir(seedDir);
const regressions = loadRegressions(join(root, 'test', 'fuzz', 'cases'));
for (const t of TARGETS) {
  const dir = join(out, 'inputs', `qcow2_${t.name}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let n = 0;
  // A `known` bug would stop every run at its first input: only the fixed ones start the corpus.
  for (const r of regressions.filter((x) => x.target === t.name && x.known === undefined)) {
    const bytes = encodeRegression(r, seeds);
    if (!bytes) continue;
    await writeFile(join(dir, r.name), bytes);
    n++;
  }
  // Structure-aware inputs: an even first byte, then the draws (one per seed image to start with).
  for (let i = 0; i < seeds.length; i++) {
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setUint32(1, Math.floor(((i + 0.5) / seeds.length) * 2 ** 32));
    for (let j = 5; j < bytes.length; j++) bytes[j] = (i * 131 + j * 29) & 0xff;
    await writeFile(join(dir, `seed-${seeds[i].name}`), bytes);
  }
  process.stdout.write(`${dir}: ${n} saved regressions, ${seeds.length} structure-aware inputs\n`);
}
process.stdout.write(`${seedDir}: ${seeds.length} seed images\n`);
