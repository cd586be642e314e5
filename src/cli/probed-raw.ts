/** The warning qemu-img prints on stderr when it opens an image for writing whose format it probed as raw. */
export function probedRawWarning(filename: string): string {
  return [
    `WARNING: Image format was not specified for '${filename}' and probing guessed raw.`,
    '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.',
    "         Specify the 'raw' format explicitly to remove the restrictions.",
  ].join('\n');
}
