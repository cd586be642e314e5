/**
 * Refcount table and refcount blocks (spec: "Host cluster management").
 *
 * Refcount table entry, one u64:
 *   bits  0- 8  reserved (0)
 *   bits  9-63  refcount block offset (cluster aligned; 0 = block not allocated, all refcounts 0)
 * The offset is split at bit 56 so it stays exact: `blockOffset` holds bits 9-55 and
 * `offsetHighBits` bits 56-63 (nonzero only beyond 64 PiB, where no L2 table may point).
 *
 * Refcount block: one cluster of cluster_size * 8 / refcount_bits entries, refcount_bits =
 * 1 << refcount_order (order 0..6). Sub-byte widths are packed least-significant bit first; wider
 * ones are big-endian. 64-bit refcounts are read as bigint, or as a number when they fit.
 */
import { unsupported } from '../errors.js';
import { TWO_32, view } from './bytes.js';

export interface RefcountTableEntry {
  blockOffset: number;
  offsetHighBits: number;
  reserved: number;
}

export const REFCOUNT_TABLE_ENTRY_SIZE = 8;

export function decodeRefcountTableEntry(dv: DataView, at: number): RefcountTableEntry {
  const hi = dv.getUint32(at);
  const lo = dv.getUint32(at + 4);
  return {
    offsetHighBits: hi >>> 24,
    blockOffset: (hi & 0x00ff_ffff) * TWO_32 + ((lo & 0xffff_fe00) >>> 0),
    reserved: lo & 0x1ff,
  };
}

export function encodeRefcountTableEntry(dv: DataView, at: number, e: RefcountTableEntry): void {
  dv.setUint32(at, (((e.offsetHighBits & 0xff) << 24) | Math.floor(e.blockOffset / TWO_32)) >>> 0);
  dv.setUint32(at + 4, ((e.blockOffset % TWO_32) | (e.reserved & 0x1ff)) >>> 0);
}

export function decodeRefcountTable(bytes: Uint8Array, count: number): RefcountTableEntry[] {
  const dv = view(bytes);
  const out: RefcountTableEntry[] = [];
  for (let i = 0; i < count; i++) out.push(decodeRefcountTableEntry(dv, i * REFCOUNT_TABLE_ENTRY_SIZE));
  return out;
}

export function encodeRefcountTable(entries: readonly RefcountTableEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * REFCOUNT_TABLE_ENTRY_SIZE);
  const dv = view(bytes);
  entries.forEach((e, i) => encodeRefcountTableEntry(dv, i * REFCOUNT_TABLE_ENTRY_SIZE, e));
  return bytes;
}

/** Entries in one refcount block: cluster_size * 8 / refcount_bits. */
export function refcountBlockEntries(clusterBits: number, refcountOrder: number): number {
  return 2 ** (clusterBits + 3 - refcountOrder);
}

/** Largest refcount a block entry can hold. */
export function maxRefcount(refcountOrder: number): bigint {
  return (1n << (1n << BigInt(refcountOrder))) - 1n;
}

/** Refcounts of 1, 2 or 4 bits share a byte: which byte, and where in it (least significant first). */
function subBytePlace(index: number, refcountOrder: number): { at: number; shift: number; mask: number } {
  const bits = 1 << refcountOrder;
  const bitIndex = index * bits;
  const shift = bitIndex & 7;
  return { at: bitIndex >>> 3, shift, mask: ((1 << bits) - 1) << shift };
}

/** Reads refcount `index` of a block exactly. */
export function readRefcountBig(block: Uint8Array, index: number, refcountOrder: number): bigint {
  if (refcountOrder === 6) {
    const dv = view(block);
    return dv.getBigUint64(index * 8, false);
  }
  return BigInt(readRefcount(block, index, refcountOrder));
}

/**
 * Reads refcount `index` of a block as a number. A 64-bit refcount above 2^53 - 1 cannot be a
 * number: it is refused with a typed error rather than rounded.
 */
export function readRefcount(block: Uint8Array, index: number, refcountOrder: number): number {
  const dv = view(block);
  switch (refcountOrder) {
    case 0:
    case 1:
    case 2: {
      const { at, shift, mask } = subBytePlace(index, refcountOrder);
      return ((block[at] ?? 0) & mask) >>> shift;
    }
    case 3:
      return dv.getUint8(index);
    case 4:
      return dv.getUint16(index * 2);
    case 5:
      return dv.getUint32(index * 4);
    case 6: {
      const hi = dv.getUint32(index * 8);
      const lo = dv.getUint32(index * 8 + 4);
      if (hi > 0x1f_ffff) {
        throw unsupported(`64-bit refcount of entry ${index} exceeds 2^53 - 1`, { field: 'refcount' });
      }
      return hi * TWO_32 + lo;
    }
    default:
      throw unsupported(`refcount_order ${refcountOrder} is not 0..6`, { field: 'refcount_order' });
  }
}

/** Writes refcount `index` of a block; the value must fit refcount_bits. */
export function writeRefcount(block: Uint8Array, index: number, refcountOrder: number, value: number | bigint): void {
  const dv = view(block);
  if (refcountOrder === 6) {
    dv.setBigUint64(index * 8, BigInt(value), false);
    return;
  }
  const v = Number(value);
  switch (refcountOrder) {
    case 0:
    case 1:
    case 2: {
      const { at, shift, mask } = subBytePlace(index, refcountOrder);
      block[at] = ((block[at] ?? 0) & ~mask) | ((v << shift) & mask);
      return;
    }
    case 3:
      dv.setUint8(index, v);
      return;
    case 4:
      dv.setUint16(index * 2, v);
      return;
    case 5:
      dv.setUint32(index * 4, v);
      return;
    default:
      throw unsupported(`refcount_order ${refcountOrder} is not 0..6`, { field: 'refcount_order' });
  }
}

export function decodeRefcountBlock(block: Uint8Array, refcountOrder: number, count: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(readRefcountBig(block, i, refcountOrder));
  return out;
}

export function encodeRefcountBlock(values: readonly bigint[], refcountOrder: number, blockBytes: number): Uint8Array {
  const block = new Uint8Array(blockBytes);
  values.forEach((v, i) => writeRefcount(block, i, refcountOrder, v));
  return block;
}

const ceilDiv = (n: bigint, d: bigint) => (n + d - 1n) / d;

/**
 * qcow2_refcount_metadata_size: the refcount blocks and refcount table clusters that count
 * `clusters` clusters and themselves (the fixed point), with `generous` headroom of half the table.
 */
export function refcountMetadataClusters(clusters: bigint, clusterSize: number, refcountOrder: number, generous: boolean): { blocks: bigint; table: bigint } {
  const perTableCluster = BigInt(clusterSize / 8);
  const perBlock = BigInt((clusterSize * 8) >> refcountOrder);
  let table = 0n;
  let blocks = 0n;
  let n = 0n;
  let last: bigint;
  do {
    last = n;
    blocks = ceilDiv(clusters + table + blocks, perBlock);
    table = ceilDiv(blocks, perTableCluster);
    n = clusters + blocks + table;
    if (n === last && generous) {
      clusters += ceilDiv(table, 2n);
      n = 0n;
      generous = false;
    }
  } while (n !== last);
  return { blocks, table };
}
