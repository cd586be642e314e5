/**
 * qemu-img's messages for an image it cannot open (img_open), as usage errors: a missing file
 * (`Could not open 'NAME': Could not open 'NAME': No such file or directory`) and a file opened as
 * qcow2 that is not one (`Could not open 'NAME': Image is not in qcow2 format`). Other failures
 * are kept as they are.
 */
import { isQcow2Error, type Qcow2Error, usage } from '../errors.js';

/** qemu-img's message when `err` says the file is not a qcow2 image (bad magic), else undefined. */
export function notQcow2Error(filename: string, err: unknown): Qcow2Error | undefined {
  return isQcow2Error(err) && err.field === 'magic' ? usage(`Could not open '${filename}': Image is not in qcow2 format`) : undefined;
}

export function explainOpenError(filename: string, err: unknown): unknown {
  const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return usage(`Could not open '${filename}': Could not open '${filename}': No such file or directory`);
  return notQcow2Error(filename, err) ?? err;
}

/** Runs `open`, turning its failure into qemu-img's message where there is one. */
export async function openOrExplain<T>(filename: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw explainOpenError(filename, err);
  }
}
