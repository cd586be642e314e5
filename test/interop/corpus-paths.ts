// Where the test suite keeps the QEMU image corpus (gitignored via `.cache/`).
// When `.cache/corpus` is a symlink to a cache shared by several worktrees, its real path is used:
// the cache key includes the directory, so every worktree must name it the same way, or each run
// would rebuild the shared cache for its own path under the others' feet.
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LINK = join(REPO_ROOT, '.cache', 'corpus');
export const CORPUS_DIR = existsSync(LINK) ? realpathSync(LINK) : LINK;
