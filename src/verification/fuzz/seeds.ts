/**
 * Seed images: the QEMU-built corpus (src/verification/corpus, cached by recipe and QEMU version)
 * and any qcow2 files in `--corpus DIR`. Each is read into memory and its structures located once.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildCorpus } from '../corpus/build.js';
import { locate } from './locate.js';
import type { MutableSeed } from './mutate.js';

/** Seeds larger than this are skipped (a case copies its image a few times). */
const MAX_SEED_BYTES = 16 * 1024 * 1024;
const QFI = [0x51, 0x46, 0x49, 0xfb];

export async function toSeed(name: string, bytes: Uint8Array): Promise<MutableSeed | string> {
  if (bytes.byteLength > MAX_SEED_BYTES) return `${name}: ${bytes.byteLength} bytes, larger than ${MAX_SEED_BYTES}`;
  if (!QFI.every((b, i) => bytes[i] === b)) return `${name}: not a qcow2 image`;
  try {
    return { name, bytes, map: await locate(bytes) };
  } catch (err) {
    return `${name}: cannot locate its structures (${(err as Error).message})`;
  }
}

/** The corpus recipes' images (built with qemu-img/qemu-io into `cacheDir` unless cached there). */
export async function corpusSeeds(cacheDir: string, log: (line: string) => void, filter?: (name: string) => boolean): Promise<MutableSeed[]> {
  const images = await buildCorpus(cacheDir, filter ? { filter } : {});
  const seeds: MutableSeed[] = [];
  for (const image of images) {
    const s = await stat(image.image);
    if (s.size > MAX_SEED_BYTES) {
      log(`  seed ${image.name} skipped: ${s.size} bytes`);
      continue;
    }
    const seed = await toSeed(image.name, new Uint8Array(await readFile(image.image)));
    if (typeof seed === 'string') log(`  seed skipped: ${seed}`);
    else seeds.push(seed);
  }
  return seeds;
}

/** Every qcow2 file directly in `dir`, named `corpus:FILE`. */
export async function dirSeeds(dir: string, log: (line: string) => void): Promise<MutableSeed[]> {
  const seeds: MutableSeed[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isFile()) continue;
    const path = join(dir, entry.name);
    if ((await stat(path)).size > MAX_SEED_BYTES) continue;
    const seed = await toSeed(`corpus:${entry.name}`, new Uint8Array(await readFile(path)));
    if (typeof seed === 'string') log(`  seed skipped: ${seed}`);
    else seeds.push(seed);
  }
  return seeds;
}
