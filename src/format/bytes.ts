/**
 * Big-endian field access shared by every codec. 64-bit values are read as two 32-bit halves or as
 * bigint, never as a lossy JS number.
 */
import { truncated } from '../errors.js';

export const TWO_32 = 0x1_0000_0000;

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function readU64(dv: DataView, at: number): bigint {
  return dv.getBigUint64(at, false);
}

export function writeU64(dv: DataView, at: number, value: bigint): void {
  dv.setBigUint64(at, BigInt.asUintN(64, value), false);
}

/** Throws a typed `truncated` error unless `bytes` holds `need` bytes from `at`. */
export function requireBytes(
  bytes: Uint8Array,
  at: number,
  need: number,
  what: string,
  fileOffset = 0,
): void {
  if (at < 0 || at + need > bytes.byteLength) {
    throw truncated(`${what} needs ${need} bytes but only ${Math.max(0, bytes.byteLength - at)} remain`, {
      field: what,
      offset: fileOffset + at,
    });
  }
}

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

export function decodeString(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

export function encodeString(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Rounds `n` up to a multiple of 8 (entries and extensions are 8-byte aligned). */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Rounds a length up to a multiple of `unit` (a power of two) without 32-bit overflow. */
export function alignUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

const ZEROS = new Uint8Array(64 * 1024);

/** Whether every byte is zero (compared 64 KiB at a time with memcmp, not byte by byte in JS). */
export function isZero(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < b.byteLength; at += ZEROS.byteLength) {
    const n = Math.min(ZEROS.byteLength, b.byteLength - at);
    if (Buffer.compare(b.subarray(at, at + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}
