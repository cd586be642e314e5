/**
 * Numbers as `qemu-img bench` reads its integer options: qemu_strtoul(text, NULL, 0, &res), i.e.
 * C's strtoul in base 0 (decimal, 0x hexadecimal, leading-0 octal; leading blanks and a sign
 * allowed) with nothing left over. A negative value wraps to a huge unsigned one, which every caller
 * then rejects as above INT_MAX; "-0" is 0.
 */
import { INT_MAX } from '../limits.js';

export function qemuStrtoul(text: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const digits = m[2] as string;
  const value = /^0[xX]/.test(digits) ? Number.parseInt(digits.slice(2), 16) : digits.startsWith('0') ? Number.parseInt(digits, 8) : Number(digits);
  if (m[1] === '-' && value !== 0) return Number.POSITIVE_INFINITY; // wraps to ULONG_MAX - value + 1
  return value;
}

/** An unsigned option in [min, INT_MAX], or undefined when QEMU would reject it. */
export function intOption(text: string, min = 0, max = INT_MAX): number | undefined {
  const value = qemuStrtoul(text);
  return value === undefined || value < min || value > max ? undefined : value;
}
