/** Probing an image's format on a command line: qemu-img's message when the file cannot be opened, its warning when it guessed raw. */
import { probeFormat } from '../device/open.js';
import { openOrExplain } from './open-error.js';

/** The format, or qemu-img's message for a file that cannot be opened. */
export function probeOrExplain(filename: string): Promise<'raw' | 'qcow2'> {
  return openOrExplain(filename, () => probeFormat(filename));
}

/** The warning qemu-img prints on stderr when it opens an image for writing whose format it probed as raw. */
export function probedRawWarning(filename: string): string {
  return [
    `WARNING: Image format was not specified for '${filename}' and probing guessed raw.`,
    '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.',
    "         Specify the 'raw' format explicitly to remove the restrictions.",
  ].join('\n');
}
