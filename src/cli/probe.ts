/** Probing an image's format on a command line, with qemu-img's message when the file cannot be opened. */
import { probeFormat } from '../device/open.js';
import { usage } from '../errors.js';

/** The format, or qemu-img's message for a file that cannot be opened. */
export async function probeOrExplain(filename: string): Promise<'raw' | 'qcow2'> {
  try {
    return await probeFormat(filename);
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code === 'ENOENT') throw usage(`Could not open '${filename}': Could not open '${filename}': No such file or directory`);
    throw err;
  }
}
