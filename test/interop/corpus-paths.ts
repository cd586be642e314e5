// Where the test suite keeps the QEMU image corpus (gitignored via `.cache/`).
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CORPUS_DIR = join(REPO_ROOT, '.cache', 'corpus');
