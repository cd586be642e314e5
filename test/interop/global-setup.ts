// Vitest globalSetup: builds the QEMU image corpus once per test run (cached across runs in
// <repo>/.cache/corpus) and hands its location to the test workers via provide/inject.
// A build failure (e.g. qemu-img missing) does not abort unrelated test files: it is passed on as
// `corpusError`, and getCorpus() (test/interop/corpus.ts) rethrows it in the tests that need it.
import type { TestProject } from 'vitest/node';
import { buildCorpus } from '../../src/verification/corpus/build.js';
import { CORPUS_DIR } from './corpus-paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    corpusDir: string;
    corpusError: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const t0 = Date.now();
  try {
    await buildCorpus(CORPUS_DIR, { log: (line) => console.log(line) });
    project.provide('corpusDir', CORPUS_DIR);
    project.provide('corpusError', '');
    console.log(`corpus ready in ${Date.now() - t0} ms: ${CORPUS_DIR}`);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`corpus build failed: ${message}`);
    project.provide('corpusDir', CORPUS_DIR);
    project.provide('corpusError', message);
  }
}
