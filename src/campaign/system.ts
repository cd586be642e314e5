/** The system under test: an engine-opened image that commands act on, reopenable. */
import type { Qcow2Device } from '../../src/engine/types.js';

export interface System {
  dev: Qcow2Device;
  path: string;
  reopen(): Promise<void>;
}

/** Bytes filled from a small seed: a repeated byte, or a pattern varied enough to defeat compression. */
export function patternBytes(length: number, seed: number, compressible: boolean): Uint8Array {
  const out = new Uint8Array(length);
  if (compressible) return out.fill((seed % 255) + 1);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}
