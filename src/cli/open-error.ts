/**
 * qemu-img's message for an image it cannot open (img_open): `Could not open 'NAME': Could not open
 * 'NAME': No such file or directory` for a missing file, as a usage error; other failures are kept.
 */
import { usage } from '../errors.js';

export function explainOpenError(filename: string, err: unknown): unknown {
  const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return usage(`Could not open '${filename}': Could not open '${filename}': No such file or directory`);
  return err;
}

/** Runs `open`, turning its failure into qemu-img's message where there is one. */
export async function openOrExplain<T>(filename: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw explainOpenError(filename, err);
  }
}
