/** qemu-io's output formats: the statistics lines, the hexdump, and the C printf bits they use. */

/**
 * C's printf("%.<digits>f", x) for a double: the exact binary value rounded half to even (glibc),
 * which Number#toFixed does not do (it rounds ties up and is not exact past 2^53 or 100 digits).
 */
export function fixed(x: number, digits: number): string {
  // x86's 0.0 / 0.0 is a NaN with the sign bit set, which glibc prints as "-nan".
  if (Number.isNaN(x)) return '-nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  const negative = x < 0 || Object.is(x, -0);
  const [mantissa, exponent] = decompose(Math.abs(x));
  const scale = 10n ** BigInt(digits);
  let units: bigint;
  if (exponent >= 0) {
    units = (mantissa << BigInt(exponent)) * scale;
  } else {
    const shift = BigInt(-exponent);
    const scaled = mantissa * scale;
    units = scaled >> shift;
    const remainder = scaled - (units << shift);
    const half = 1n << (shift - 1n);
    if (remainder > half || (remainder === half && (units & 1n) === 1n)) units += 1n;
  }
  let text = units.toString().padStart(digits + 1, '0');
  if (digits > 0) text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  return negative ? `-${text}` : text;
}

/** A finite non-negative double as mantissa * 2^exponent, exactly. */
function decompose(x: number): [bigint, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  const fraction = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  return biased === 0 ? [fraction, -1074] : [fraction | (1n << 52n), biased - 1075];
}

const UNITS: [number, string][] = [
  [2 ** 60, ' EiB'],
  [2 ** 50, ' PiB'],
  [2 ** 40, ' TiB'],
  [2 ** 30, ' GiB'],
  [2 ** 20, ' MiB'],
  [2 ** 10, ' KiB'],
];

/** qemu-io's cvtstr(): "64 KiB", "4.883 KiB", "3 bytes", "12.459 KiB". */
export function cvtstr(value: number): string {
  let text: string | undefined;
  let suffix = ' bytes';
  for (const [unit, name] of UNITS) {
    if (value >= unit) {
      text = fixed(value / unit, 3);
      suffix = name;
      break;
    }
  }
  text ??= fixed(value, 6);
  const trim = text.indexOf('.000');
  return trim >= 0 ? text.slice(0, trim) + suffix : text + suffix;
}

/** C's "%0<width>.2f": zero-padded on the left to `width` characters. */
function zeroPadded(x: number, width: number): string {
  const text = fixed(x, 2);
  return text.length >= width ? text : text.padStart(width, '0');
}

/** qemu-io's timestr() for an elapsed time in nanoseconds ("00.00 sec", or "0:00:00.00" if verbose). */
export function timestr(elapsedNs: bigint, verbose: boolean): string {
  const sec = Number(elapsedNs / 1_000_000_000n);
  const frac = Number(elapsedNs % 1_000_000_000n) / 1e9;
  if (verbose || sec !== 0) {
    const hours = Math.floor(sec / 3600);
    const minutes = Math.floor((sec % 3600) / 60);
    return `${hours}:${String(minutes).padStart(2, '0')}:${zeroPadded((sec % 60) + frac, 5)}`;
  }
  return `${zeroPadded(frac, 5)} sec`;
}

/**
 * qemu-io's print_report(): two lines ("read 65536/65536 bytes at offset 0" and
 * "64 KiB, 1 ops; 00.00 sec (… MiB/sec and … ops/sec)"), or with -C one line
 * "bytes,ops,time,bytes/sec,ops/sec".
 */
export function report(op: string, elapsedNs: bigint, offset: number, count: number, total: number, machine: boolean): string {
  const seconds = Number(elapsedNs / 1_000_000_000n) + Number(elapsedNs % 1_000_000_000n) / 1e9;
  const ops = 1;
  const ts = timestr(elapsedNs, machine);
  if (machine) return `${total},${ops},${ts},${fixed(total / seconds, 3)},${fixed(ops / seconds, 3)}\n`;
  return (
    `${op} ${total}/${count} bytes at offset ${offset}\n` +
    `${cvtstr(total)}, ${ops} ops; ${ts} (${cvtstr(total / seconds)}/sec and ${fixed(ops / seconds, 4)} ops/sec)\n`
  );
}

/** qemu-io's dump_buffer(): 16 bytes a line, hex then isalnum() characters (C locale). */
export function hexdump(data: Uint8Array, offset: number): string {
  const lines: string[] = [];
  for (let i = 0; i < data.byteLength; i += 16) {
    const row = data.subarray(i, Math.min(i + 16, data.byteLength));
    let hex = '';
    let text = '';
    for (const b of row) {
      hex += `${b.toString(16).padStart(2, '0')} `;
      const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
      text += alnum ? String.fromCharCode(b) : '.';
    }
    lines.push(`${(offset + i).toString(16).padStart(8, '0')}:  ${hex} ${text}\n`);
  }
  return lines.join('');
}
