/**
 * Comparing our stderr with qemu-img's: line for line it is qemu-img's (its file names made ours
 * by `rename`), but for its error lines: qemu-img's message after `qemu-img: ` is ours after
 * `qcow2 COMMAND: CODE: `, and qemu-img's pointer to its --help is not repeated.
 */
import { expect } from 'vitest';

export const TRY_HELP = "Try 'qemu-img --help' for more information";

export function expectSameMessage(command: string, ours: string, theirs: string, rename: (s: string) => string, opts: { oneErrorLine?: boolean } = {}): void {
  const expected = rename(theirs)
    .split('\n')
    .filter((line) => line !== TRY_HELP);
  const got = ours.split('\n');
  expect(got, ours).toHaveLength(expected.length);
  if (opts.oneErrorLine) expect(expected.filter((line) => line.startsWith('qemu-img: ')), theirs).toHaveLength(1);
  const prefix = new RegExp(`^qcow2 ${command}: [a-z]+: `);
  expected.forEach((line, i) => {
    if (!line.startsWith('qemu-img: ')) return expect(got[i]).toBe(line);
    expect(got[i]).toMatch(prefix);
    expect(got[i]?.replace(prefix, '')).toBe(line.slice('qemu-img: '.length));
  });
}
