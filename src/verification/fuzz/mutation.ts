/**
 * A mutation is one concrete, replayable change to a seed image's bytes: a field set to a value
 * (the field named as the spec names it, `ksy/type/id`), a region overwritten, a bit flipped, the
 * file truncated, or a region copied over another. Mutations are plain data (JSON in the regression
 * store) and applied in order; positions are absolute file offsets in the seed, so any sub-list of
 * a case's mutations is itself a case (what the shrinker relies on).
 */

export type Mutation =
  /** Bits [shift, shift + width) of the big-endian `size`-byte word at `at` become `value`. */
  | { op: 'set'; field: string; at: number; size: number; shift: number; width: number; value: string; why?: string }
  /** The bytes at `at` become `hex`. */
  | { op: 'bytes'; field: string; at: number; hex: string; why?: string }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'truncate'; length: number }
  /** `length` bytes at `from` are copied over the bytes at `at`. */
  | { op: 'splice'; field: string; at: number; from: number; length: number };

/** The largest file a mutation may grow an image to (a field past the end extends it). */
const MAX_GROWTH = 64 * 1024 * 1024;

/** The seed's bytes with `mutations` applied in order (the seed is not changed). */
export function applyMutations(seed: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = seed;
  let copied = false;
  const own = (need: number) => {
    if (!copied || need > bytes.byteLength) {
      const grown = new Uint8Array(Math.max(bytes.byteLength, Math.min(need, MAX_GROWTH)));
      grown.set(bytes.subarray(0, Math.min(bytes.byteLength, grown.byteLength)));
      bytes = grown;
      copied = true;
    }
  };
  for (const m of mutations) {
    switch (m.op) {
      case 'set': {
        if (m.at + m.size > MAX_GROWTH) break;
        own(m.at + m.size);
        setBits(bytes, m.at, m.size, m.shift, m.width, BigInt(m.value));
        break;
      }
      case 'bytes': {
        const data = fromHex(m.hex);
        if (m.at + data.byteLength > MAX_GROWTH) break;
        own(m.at + data.byteLength);
        bytes.set(data, m.at);
        break;
      }
      case 'flip':
        if (m.at >= bytes.byteLength) break;
        own(0);
        bytes[m.at] = (bytes[m.at] ?? 0) ^ (1 << (m.bit & 7));
        break;
      case 'truncate':
        own(0);
        bytes = bytes.subarray(0, Math.min(bytes.byteLength, Math.max(0, m.length)));
        break;
      case 'splice': {
        if (m.from + m.length > bytes.byteLength || m.at + m.length > MAX_GROWTH) break;
        own(m.at + m.length);
        bytes.copyWithin(m.at, m.from, m.from + m.length);
        break;
      }
    }
  }
  return bytes;
}

/** Reads bits [shift, shift + width) of the big-endian word of `size` bytes at `at`. */
export function getBits(bytes: Uint8Array, at: number, size: number, shift: number, width: number): bigint {
  let word = 0n;
  for (let i = 0; i < size; i++) word = (word << 8n) | BigInt(bytes[at + i] ?? 0);
  return (word >> BigInt(shift)) & ((1n << BigInt(width)) - 1n);
}

export function setBits(bytes: Uint8Array, at: number, size: number, shift: number, width: number, value: bigint): void {
  let word = 0n;
  for (let i = 0; i < size; i++) word = (word << 8n) | BigInt(bytes[at + i] ?? 0);
  const mask = ((1n << BigInt(width)) - 1n) << BigInt(shift);
  word = (word & ~mask) | ((value << BigInt(shift)) & mask);
  for (let i = size - 1; i >= 0; i--) {
    bytes[at + i] = Number(word & 0xffn);
    word >>= 8n;
  }
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

const h = (n: number) => `0x${n.toString(16)}`;

/** One line a person reads: `l2_entry.offset @0x50008 [bits 9..55] = 0x20000000000000`. */
export function describeMutation(m: Mutation): string {
  switch (m.op) {
    case 'set': {
      const bits = m.shift === 0 && m.width === m.size * 8 ? '' : ` [bits ${m.shift}..${m.shift + m.width - 1} of ${m.size * 8}]`;
      return `${m.field} @${h(m.at)}${bits} = ${m.value}${m.why ? ` (${m.why})` : ''}`;
    }
    case 'bytes':
      return `${m.field} @${h(m.at)} = bytes ${m.hex.length > 40 ? `${m.hex.slice(0, 40)}… (${m.hex.length / 2} bytes)` : m.hex}${m.why ? ` (${m.why})` : ''}`;
    case 'flip':
      return `flip bit ${m.bit} of byte @${h(m.at)}`;
    case 'truncate':
      return `truncate to ${h(m.length)} bytes`;
    case 'splice':
      return `${m.field}: copy ${h(m.length)} bytes from @${h(m.from)} over @${h(m.at)}`;
  }
}
