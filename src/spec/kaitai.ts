// Typed entry points to the Kaitai Struct parsers generated from spec/*.ksy
// (src/spec/generated/, regenerate with `node scripts/gen-spec.mjs`).
//
// These parsers are the executable form of the specification: slow, but written from the spec
// text alone. Engines and writers are tested against them.
//
// Conventions (see the comment at the top of any spec/*.ksy file):
// - Field names are the .ksy snake_case ids in lowerCamelCase (l1_table_offset_hi ->
//   l1TableOffsetHi); nested types are static members (Qcow2Header.HeaderExtension).
// - 64-bit values are split into `xHi`/`xLo` u32 halves; use joinU64() for the exact bigint.
//   Combined number instances (header.l1TableOffset, entry.offset, ...) are exact only below
//   2^53; table-entry offsets (bits 9-55) always are.
// - Parsing of seq fields is eager and throws on truncated input (KaitaiStream.EOFError) or on
//   failed validations (bad magic, version not 2/3, header_length < 104). Instances are lazy:
//   e.g. header.backingFileName only reads (and may throw) when first accessed.
// - Uint8Array fields are views into the input bytes, not copies.
import KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';
import { Qcow2Header } from './generated/Qcow2Header.js';
import { Qcow2L1Table } from './generated/Qcow2L1Table.js';
import { Qcow2L2Table } from './generated/Qcow2L2Table.js';
import { Qcow2CompressedDescriptor } from './generated/Qcow2CompressedDescriptor.js';
import { Qcow2RefcountTable } from './generated/Qcow2RefcountTable.js';
import { Qcow2RefcountBlock } from './generated/Qcow2RefcountBlock.js';
import { Qcow2SnapshotTable } from './generated/Qcow2SnapshotTable.js';
import { Qcow2BitmapDirectory } from './generated/Qcow2BitmapDirectory.js';
import { Qcow2BitmapTable } from './generated/Qcow2BitmapTable.js';
import { Luks1Header } from './generated/Luks1Header.js';

export {
  Qcow2Header,
  Qcow2L1Table,
  Qcow2L2Table,
  Qcow2CompressedDescriptor,
  Qcow2RefcountTable,
  Qcow2RefcountBlock,
  Qcow2SnapshotTable,
  Qcow2BitmapDirectory,
  Qcow2BitmapTable,
  Luks1Header,
};

// kaitai-struct ships `export default KaitaiStream` typings inside a CommonJS package, so under
// NodeNext TypeScript types the default import as the module object, while at run time (Node ESM
// importing CommonJS) it is the class itself. Accept both shapes.
type KaitaiStreamClass = typeof KaitaiStreamModule.default;
export type KaitaiStream = InstanceType<KaitaiStreamClass>;
const KaitaiStreamCtor: KaitaiStreamClass =
  (KaitaiStreamModule as unknown as { default?: KaitaiStreamClass }).default ??
  (KaitaiStreamModule as unknown as KaitaiStreamClass);

/** A KaitaiStream over exactly the given bytes (no copy). */
export function kaitaiStream(bytes: Uint8Array): KaitaiStream {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
  return new KaitaiStreamCtor(new DataView(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength));
}

function checkCount(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`${name} must be an integer in 0..2^32-1, got ${n}`);
  }
}

function checkClusterBits(clusterBits: number): void {
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) {
    throw new RangeError(`clusterBits must be an integer in 9..21, got ${clusterBits}`);
  }
}

/** Exact unsigned 64-bit value from the `xHi`/`xLo` halves used throughout the parsers. */
export function joinU64(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * Parses the image header, its extensions and (lazily, via backingFileName) the backing file
 * name. Pass at least the first cluster, or the whole header area up to the end-of-extensions
 * marker; extensions are never read past the end of `bytes`.
 */
export function parseHeader(bytes: Uint8Array): Qcow2Header {
  return new Qcow2Header(kaitaiStream(bytes));
}

/** Parses `numEntries` 8-byte L1 entries from the start of `bytes`. */
export function parseL1Table(bytes: Uint8Array, numEntries: number): Qcow2L1Table {
  checkCount('numEntries', numEntries);
  return new Qcow2L1Table(kaitaiStream(bytes), null, null, numEntries);
}

export interface L2TableOptions {
  /** Incompatible feature bit 4: 16-byte entries with subcluster bitmaps. */
  extendedL2: boolean;
  /** cluster_bits from the header (9..21), needed to split compressed descriptors. */
  clusterBits: number;
  /** Number of entries to parse (cluster size / entry size for a whole table). */
  numEntries: number;
}

/** Parses `numEntries` standard (8-byte) or extended (16-byte) L2 entries. */
export function parseL2Table(bytes: Uint8Array, opts: L2TableOptions): Qcow2L2Table {
  checkClusterBits(opts.clusterBits);
  checkCount('numEntries', opts.numEntries);
  return new Qcow2L2Table(kaitaiStream(bytes), null, null, opts.clusterBits, opts.extendedL2, opts.numEntries);
}

/**
 * Parses a compressed cluster descriptor from a 64-bit big-endian word: either the first 8
 * bytes of `entry` (a whole compressed L2 entry, or a descriptor with bits 62-63 zero) or a
 * bigint holding the word.
 */
export function parseCompressedDescriptor(entry: Uint8Array | bigint, clusterBits: number): Qcow2CompressedDescriptor {
  checkClusterBits(clusterBits);
  let bytes: Uint8Array;
  if (typeof entry === 'bigint') {
    if (entry < 0n || entry > 0xffff_ffff_ffff_ffffn) throw new RangeError('entry must be an unsigned 64-bit value');
    bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, entry);
  } else {
    bytes = entry.subarray(0, 8);
  }
  return new Qcow2CompressedDescriptor(kaitaiStream(bytes), null, null, clusterBits);
}

/** Parses `numEntries` 8-byte refcount table entries. */
export function parseRefcountTable(bytes: Uint8Array, numEntries: number): Qcow2RefcountTable {
  checkCount('numEntries', numEntries);
  return new Qcow2RefcountTable(kaitaiStream(bytes), null, null, numEntries);
}

/** Parses `numEntries` refcounts of 1 << refcountOrder bits each. */
export function parseRefcountBlock(bytes: Uint8Array, refcountOrder: number, numEntries: number): Qcow2RefcountBlock {
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    throw new RangeError(`refcountOrder must be an integer in 0..6, got ${refcountOrder}`);
  }
  checkCount('numEntries', numEntries);
  return new Qcow2RefcountBlock(kaitaiStream(bytes), null, null, refcountOrder, numEntries);
}

/** Exact refcount values of a parsed block (64-bit refcounts may exceed 2^53). */
export function refcountValues(block: Qcow2RefcountBlock): bigint[] {
  return block.entries.map((e) =>
    block.refcountOrder === 6 ? joinU64(e.valueHi ?? 0, e.valueLo ?? 0) : BigInt(e.value),
  );
}

/** Parses `nbSnapshots` snapshot table entries (bytes start at snapshots_offset). */
export function parseSnapshotTable(bytes: Uint8Array, nbSnapshots: number): Qcow2SnapshotTable {
  checkCount('nbSnapshots', nbSnapshots);
  return new Qcow2SnapshotTable(kaitaiStream(bytes), null, null, nbSnapshots);
}

/** Parses `nbBitmaps` bitmap directory entries (bytes start at bitmap_directory_offset). */
export function parseBitmapDirectory(bytes: Uint8Array, nbBitmaps: number): Qcow2BitmapDirectory {
  checkCount('nbBitmaps', nbBitmaps);
  return new Qcow2BitmapDirectory(kaitaiStream(bytes), null, null, nbBitmaps);
}

/** Parses `numEntries` 8-byte bitmap table entries. */
export function parseBitmapTable(bytes: Uint8Array, numEntries: number): Qcow2BitmapTable {
  checkCount('numEntries', numEntries);
  return new Qcow2BitmapTable(kaitaiStream(bytes), null, null, numEntries);
}

/**
 * Parses the 592-byte LUKS1 partition header at the start of the area the full disk encryption
 * header pointer extension points at (crypt_method 2). Throws on a bad magic or short input.
 */
export function parseLuksHeader(bytes: Uint8Array): Luks1Header {
  return new Luks1Header(kaitaiStream(bytes));
}
