/**
 * Boundary values for a field, by kind: 0, 1, the largest value, off by one, misaligned, pointing
 * into other metadata or at another table's data (shared), at or past the end of the file, above
 * 2^53 and near 2^56 (where host offsets end); flags get one bit toggled or all set; names get
 * hostile strings. Values are logical (a byte offset, not its stored bits >> 9); the mutator
 * divides by the slot's scale.
 */
import type { SeedMap } from './locate.js';
import type { ValueKind } from './fields.js';

export type Rng = () => number;

export const below = (rng: Rng, n: number): number => Math.floor((rng() / 4294967296) * n);
export const pick = <T>(rng: Rng, list: readonly T[]): T => list[below(rng, list.length)] as T;

function random64(rng: Rng): bigint {
  return (BigInt(rng()) << 32n) | BigInt(rng());
}

/** A logical value for a number field whose current (logical) value is `current`. */
export function boundaryValue(rng: Rng, kind: ValueKind, current: bigint, width: number, scale: bigint, map: SeedMap, choices?: readonly bigint[]): { value: bigint; why: string } {
  const max = ((1n << BigInt(width)) - 1n) * scale;
  const C = BigInt(map.clusterSize);
  const end = BigInt(map.fileSize);
  const common: Array<[bigint, string]> = [
    [0n, 'zero'],
    [1n * scale, 'one'],
    [max, 'max'],
    [max - scale, 'max - 1'],
    [current + scale, 'off by one up'],
    [current - scale, 'off by one down'],
    [current ^ ((1n << BigInt(below(rng, width))) * scale), 'one bit toggled'],
    [(random64(rng) & ((1n << BigInt(width)) - 1n)) * scale, 'random'],
  ];
  let special: Array<[bigint, string]> = [];
  switch (kind) {
    case 'offset':
      special = [
        [current + 512n, 'misaligned by a sector'],
        [current + 1n, 'misaligned by a byte'],
        [current + C, 'next cluster'],
        [BigInt(pick(rng, map.metadataOffsets)), 'into other metadata'],
        [BigInt(pick(rng, map.metadataOffsets)) + C / 2n, 'inside other metadata'],
        [map.dataOffsets.length > 0 ? BigInt(pick(rng, map.dataOffsets)) : C, 'shared with a data cluster'],
        [end, 'at the end of the file'],
        [((end + C - 1n) / C) * C + C, 'past the end of the file'],
        [1n << 53n, '2^53'],
        [(1n << 53n) + C, 'above 2^53'],
        [(1n << 55n) - C, 'below 2^55'],
        [(1n << 56n) - C, 'last cluster below 2^56'],
        [1n << 56n, '2^56'],
        [1n << 62n, '2^62'],
      ];
      break;
    case 'count':
    case 'length':
      special = [
        [current * 2n, 'doubled'],
        [current / 2n, 'halved'],
        [0x7fffffffn, '2^31 - 1'],
        [0x80000000n, '2^31'],
        [0xffffffffn, '2^32 - 1'],
        [end, 'file size'],
        [end + 1n, 'file size + 1'],
        [1n << 53n, '2^53'],
        [(1n << 53n) + 512n, 'above 2^53'],
        [((1n << 53n) / 512n) * 512n - 1n, 'not a multiple of 512'],
        [current + 1n, 'one byte more'],
      ];
      break;
    case 'bits':
      special = [0n, 1n, 7n, 8n, 9n, 13n, 14n, 16n, 20n, 21n, 22n, 30n, 31n, 32n, 63n, 64n, 255n].map((v) => [v, `${v}`] as [bigint, string]);
      break;
    case 'flags':
      special = [
        [current ^ (1n << BigInt(below(rng, Math.min(width, 8)))), 'a low bit toggled'],
        [max, 'all bits set'],
      ];
      break;
    case 'refcount':
      special = [
        [0n, 'zero refcount'],
        [1n, 'refcount 1'],
        [2n, 'refcount 2'],
        [max, 'max refcount'],
      ];
      break;
    case 'enum':
      special = (choices ?? []).map((v) => [v, `0x${v.toString(16)}`] as [bigint, string]);
      break;
    default:
      break;
  }
  if (choices && kind !== 'enum') special.push(...choices.map((v) => [v, `0x${v.toString(16)}`] as [bigint, string]));
  const pool = special.length > 0 && below(rng, 3) !== 0 ? special : common;
  const [value, why] = pick(rng, pool);
  return { value: value < 0n ? 0n : value, why };
}

/** File names an image may hold: outside files, devices, protocols, the image itself, NUL bytes. */
export const HOSTILE_NAMES = [
  '',
  '/etc/passwd',
  '../../../../../../etc/passwd',
  '/dev/zero',
  '/dev/urandom',
  '/proc/self/fd/0',
  'fuzz.qcow2',
  './fuzz.qcow2',
  'nbd://127.0.0.1:1/x',
  'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/passwd"}}',
  'a\u0000b',
  'qcow2',
  'raw',
  'vmdk',
];

/** New bytes for a region of `length` bytes. */
export function regionBytes(rng: Rng, length: number): { bytes: Uint8Array; why: string } {
  const n = Math.max(1, Math.min(length, 4096));
  switch (below(rng, 6)) {
    case 0:
      return { bytes: new Uint8Array(n), why: 'zeros' };
    case 1:
      return { bytes: new Uint8Array(n).fill(0xff), why: 'all ones' };
    case 2: {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = rng() & 0xff;
      return { bytes: b, why: 'random' };
    }
    case 3: {
      const name = Buffer.from(pick(rng, HOSTILE_NAMES));
      const b = new Uint8Array(n);
      b.set(name.subarray(0, n));
      return { bytes: b, why: `name '${name.toString().slice(0, 40)}'` };
    }
    case 4:
      return { bytes: Uint8Array.of(0xff, 0xfe, 0xc0, 0x80).subarray(0, n), why: 'invalid UTF-8' };
    default: {
      const b = new Uint8Array(1);
      b[0] = rng() & 0xff;
      return { bytes: b, why: 'one byte' };
    }
  }
}
