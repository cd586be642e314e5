/**
 * Sizes with binary suffixes, read as QEMU 7.2 reads them (qemu_strtosz, util/cutils.c): the one
 * parser behind `qcow2 create`'s SIZE and its `-o` size options (as qemu-img create), the offsets and
 * lengths of `qcow2 io -c` commands (as qemu-io) and `qcow2 bench -s/-S/-o` (as qemu-img bench).
 *
 * qemu-img and qemu-io call the same function, and were observed to read every size alike (qemu-img
 * create SIZE and qemu-io `read 0 SIZE` for fractions, suffixes, hexadecimal, a fraction that rounds
 * to 1.0). What differs is only what the caller does with the result, so the wrappers differ:
 * {@link cvtnum} (qemu-io and qemu-img: at most INT64_MAX) and {@link cvtnumFull} (qemu-img's
 * messages, with a maximum of the caller's).
 */
import { INT64_MAX } from './limits.js';

export type SizeParse = { ok: true; value: bigint } | { ok: false; error: 'invalid' | 'range' };

const TWO_64 = 1n << 64n;

const SUFFIX_SHIFT: Record<string, bigint> = { B: 0n, K: 10n, M: 20n, G: 30n, T: 40n, P: 50n, E: 60n };

function suffixMul(c: string | undefined): bigint | undefined {
  if (c === undefined) return undefined;
  const shift = SUFFIX_SHIFT[c.toUpperCase()];
  return shift === undefined ? undefined : 1n << shift;
}

/** C's isspace() in the C locale: what strtoull skips before a number. */
const C_SPACE = /^[ \t\n\v\f\r]*/;

/** strtoull: leading white space, an optional sign, digits of `base` (16 takes an optional 0x). */
function strtoull(text: string, at: number, base: 10 | 16): { value: bigint; end: number; range: boolean } | undefined {
  let i = at + (C_SPACE.exec(text.slice(at))?.[0].length ?? 0);
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  const digit = base === 10 ? /[0-9]/ : /[0-9a-fA-F]/;
  if (base === 16 && text[i] === '0' && (text[i + 1] === 'x' || text[i + 1] === 'X') && digit.test(text[i + 2] ?? '')) i += 2;
  const start = i;
  while (i < text.length && digit.test(text[i] ?? '')) i++;
  if (i === start) return undefined;
  let value = BigInt(base === 10 ? text.slice(start, i) : `0x${text.slice(start, i)}`);
  const range = value >= TWO_64;
  if (range) value = TWO_64 - 1n;
  else if (negative) value = (TWO_64 - value) % TWO_64;
  return { value, end: i, range };
}

/**
 * QEMU's qemu_strtosz (util/cutils.c, 7.2): a decimal (or 0x hexadecimal) byte count with an optional
 * suffix B, k, M, G, T, P, E (powers of 1024, case-insensitive; "0x1k" is 1024 too, as QEMU 7.2
 * still takes a suffix after hexadecimal with a deprecation warning; as B and E are hexadecimal
 * digits "0x1b" is 27). A decimal fraction needs a suffix other than B and is rounded half up to
 * whole bytes ("1.5k" = 1536, "0.1k" = 102; "1.0" = 1, a zero fraction needs no suffix). The
 * fraction becomes a 64-bit fixed-point number as QEMU's (uint64_t)(fraction * 0x1p64) does on
 * x86-64: one that rounds to 1.0 as a double wraps to 0, so "1.99999999999999999999k" is 1024, as
 * qemu-img and qemu-io both read it. Octal, exponents, negative numbers and trailing characters are
 * invalid; values of 2^64 or more are out of range (invalid when characters follow).
 */
export function qemuStrtosz(text: string): SizeParse {
  const integral = strtoull(text, 0, 10);
  if (integral === undefined) return { ok: false, error: 'invalid' };
  let { value: val, end } = integral;
  let error: 'invalid' | 'range' | undefined = integral.range ? 'range' : undefined;
  let valf = 0n;
  done: {
    if (error) break done;
    if (text.slice(0, end).includes('-')) {
      error = 'invalid';
      end = 0;
      break done;
    }
    if (val === 0n && (text[end] === 'x' || text[end] === 'X')) {
      const hex = strtoull(text, 0, 16);
      if (hex === undefined) {
        error = 'invalid';
        break done;
      }
      val = hex.value;
      end = hex.end;
      if (hex.range) {
        error = 'range';
        break done;
      }
      // QEMU 7.2 still takes a suffix after hexadecimal (deprecated), but no fraction.
      if (text[end] === '.') {
        error = 'invalid';
        end = 0;
        break done;
      }
    } else if (text[end] === '.') {
      // strtod of the fraction: an exponent anywhere in it makes the whole input invalid.
      const m = /^\.[0-9]+(?:[eE][+-]?[0-9]+)?/.exec(text.slice(end));
      if (m === null) {
        end += 1; // "5.k": no fractional digits
      } else if (/[eE]/.test(m[0])) {
        error = 'invalid';
        end = 0;
        break done;
      } else {
        const scaled = Number.parseFloat(`0${m[0]}`) * 2 ** 64;
        valf = scaled >= 2 ** 64 ? 0n : BigInt(Math.floor(scaled));
        end += m[0].length;
      }
    }
    let mul = suffixMul(text[end]);
    if (mul !== undefined) end++;
    else mul = 1n;
    if (mul === 1n) {
      if (valf !== 0n) {
        error = 'invalid';
        end = 0;
      }
      break done;
    }
    const frac = valf * mul;
    let total = val * mul + (frac >> 64n);
    total += (frac & (TWO_64 - 1n)) >> 63n; // round half up
    if (total >= TWO_64) {
      error = 'range';
      break done;
    }
    val = total;
  }
  if (end < text.length) error = 'invalid';
  return error ? { ok: false, error } : { ok: true, value: val };
}

/** cvtnum() of qemu-io and qemu-img: qemu_strtosz with the result limited to INT64_MAX. */
export function cvtnum(text: string): bigint | 'invalid' | 'too-large' {
  const r = qemuStrtosz(text);
  if (!r.ok) return r.error === 'range' ? 'too-large' : 'invalid';
  return r.value > INT64_MAX ? 'too-large' : r.value;
}

/**
 * qemu-img's cvtnum_full(name, text, min, max): the value, or the error qemu-img reports (on two
 * lines there, joined into one here).
 */
export function cvtnumFull(name: string, text: string, max: bigint = INT64_MAX, min = 0n): { value: bigint } | { error: string } {
  const r = qemuStrtosz(text);
  if (!r.ok && r.error === 'invalid') {
    return {
      error: `Invalid ${name} specified. You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.`,
    };
  }
  if (!r.ok || r.value > max || r.value < min) return { error: `Invalid ${name} specified. Must be between ${min} and ${max}.` };
  return { value: r.value };
}

/**
 * C's strtol(text, &end, 0) over the whole text, as QEMU's qemu_strtol with no end pointer: leading
 * white space, a sign, then decimal, 0x hex or 0 octal digits, and nothing left over; the value, or
 * undefined where qemu_strtol fails (nothing converted, or something left over). Out of long's
 * range is not told apart: callers check their own range.
 */
export function qemuStrtol(text: string): bigint | undefined {
  const match = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return undefined;
  const digits = match[2] as string;
  const value = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits[0] === '0' ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  return match[1] === '-' ? -value : value;
}
