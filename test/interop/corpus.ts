// Test-side access to the QEMU image corpus (src/verification/corpus). The corpus is built once per
// run by test/interop/global-setup.ts; without that setup (or when it failed), getCorpus() builds it
// itself (the build is cached and locked, so concurrent workers take turns).
import { inject } from 'vitest';
import { buildCorpus, type CorpusImage } from '../../src/verification/corpus/build.js';
import { CORPUS_DIR } from './corpus-paths.js';

export type { CorpusImage } from '../../src/verification/corpus/build.js';
export { CORPUS_DIR, REPO_ROOT } from './corpus-paths.js';

let corpus: Promise<CorpusImage[]> | undefined;

/** The corpus images (built on first use). Throws if the corpus cannot be built. */
export function getCorpus(): Promise<CorpusImage[]> {
  corpus ??= (async () => {
    let dir: string | undefined;
    let error = '';
    try {
      dir = inject('corpusDir');
      error = inject('corpusError') ?? '';
    } catch {
      // Not running under the global setup.
    }
    if (error) throw new Error(`QEMU image corpus unavailable: ${error}`);
    return buildCorpus(dir ?? CORPUS_DIR);
  })();
  return corpus;
}

/** One corpus image by name (throws if the recipe does not exist). */
export async function getCorpusImage(name: string): Promise<CorpusImage> {
  const img = (await getCorpus()).find((i) => i.name === name);
  if (!img) throw new Error(`no corpus image named ${name}`);
  return img;
}
