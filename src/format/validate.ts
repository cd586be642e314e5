/**
 * Semantic checks of a decoded header against the spec and our limits. Pure: the caller passes the
 * file size. Every failure names the field and its offset in the header.
 */
import { Qcow2Error, type Qcow2ErrorCode, hex } from '../errors.js';
import {
  AUTOCLEAR_BITMAPS,
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_DEFLATE,
  COMPRESSION_ZSTD,
  CRYPT_LUKS,
  INCOMPAT_COMPRESSION,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTL2,
  INCOMPAT_KNOWN,
  HEADER_V3_MIN_LENGTH,
  MAX_REFCOUNT_ORDER,
  MIN_CLUSTER_BITS,
  MIN_CLUSTER_BITS_EXTL2,
  SECTOR_SIZE,
} from './constants.js';
import {
  MAX_BACKING_FILE_NAME,
  MAX_CLUSTER_BITS,
  MAX_L1_BYTES,
  MAX_REFCOUNT_TABLE_BYTES,
  MAX_SNAPSHOTS,
  MAX_VIRTUAL_SIZE as MAX_VIRTUAL_SIZE_NUMBER,
} from '../limits.js';
import type { FeatureNameEntry } from './extensions.js';
import { hostRangeFits, hostRangeProblem } from './host-offset.js';
import { type Geometry, geometry, l1EntriesFor } from './geometry.js';
import type { Header } from './header.js';

export interface Features {
  dirty: boolean;
  corrupt: boolean;
  externalDataFile: boolean;
  extendedL2: boolean;
  lazyRefcounts: boolean;
  bitmapsConsistent: boolean;
  dataFileRaw: boolean;
}

export interface Layout {
  geometry: Geometry;
  features: Features;
  l1TableOffset: number;
  l1Size: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  snapshotsOffset: number;
  nbSnapshots: number;
  backingFileOffset: number;
  backingFileSize: number;
  compressionType: number;
}

/** Header field offsets, for error reports. */
const AT = {
  backing_file_offset: 8,
  backing_file_size: 16,
  cluster_bits: 20,
  size: 24,
  crypt_method: 32,
  l1_size: 36,
  l1_table_offset: 40,
  refcount_table_offset: 48,
  refcount_table_clusters: 56,
  nb_snapshots: 60,
  snapshots_offset: 64,
  incompatible_features: 72,
  refcount_order: 96,
  header_length: 100,
  compression_type: 104,
} as const;
type Field = keyof typeof AT;

function fail(code: Qcow2ErrorCode, field: Field, message: string): Qcow2Error {
  return new Qcow2Error(code, message, { field, offset: AT[field] });
}

/** Largest virtual size we accept (src/limits.ts): offsets must stay exact JS numbers. */
const MAX_VIRTUAL_SIZE = BigInt(MAX_VIRTUAL_SIZE_NUMBER);

export interface ValidateOptions {
  /**
   * Accept an L1 or refcount table that extends past the end of the file (it reads as zeros
   * there). QEMU opens such an image and `qemu-img check` classifies what is missing; `check`
   * asks for this, the engines do not.
   */
  tablesPastEnd?: boolean;
}

/** Checks the header fields that do not depend on extensions. */
export function validateHeader(h: Header, fileSize: number, featureNames: readonly FeatureNameEntry[] = [], opts: ValidateOptions = {}): Layout {
  const tableEnd = opts.tablesPastEnd ? Number.POSITIVE_INFINITY : fileSize;
  checkClusterBits(h);
  checkHeaderLength(h);
  const clusterSize = 2 ** h.clusterBits;
  checkIncompatible(h, featureNames);
  if (h.refcountOrder > MAX_REFCOUNT_ORDER) {
    throw fail('corrupt', 'refcount_order', `refcount_order ${h.refcountOrder} exceeds 6 (64-bit refcounts)`);
  }
  const features = decodeFeatures(h);
  if (features.extendedL2 && h.clusterBits < MIN_CLUSTER_BITS_EXTL2) {
    throw fail('corrupt', 'cluster_bits', `extended L2 entries need clusters of at least 16 KiB, not 2^${h.clusterBits}`);
  }
  if (features.dataFileRaw && !features.externalDataFile) {
    // Without a data file the bit means nothing here; opening such an image for I/O is refused
    // (src/qcow2/open.ts, as QEMU), but its metadata can be read (qemu-img info shows it).
    features.dataFileRaw = false;
  }
  const compressionType = checkCompression(h);
  if (h.cryptMethod > CRYPT_LUKS) {
    throw fail('unsupported', 'crypt_method', `unknown encryption method ${h.cryptMethod}`);
  }
  if (h.size > MAX_VIRTUAL_SIZE) {
    throw fail('unsupported', 'size', `virtual size ${h.size} exceeds 2^53 - 1 bytes`);
  }
  const headerSize = Number(h.size);
  // The device's size in whole sectors, as QEMU takes it (see SECTOR_SIZE); the L1 table must
  // still map every byte of the header's size.
  const virtualSize = headerSize - (headerSize % SECTOR_SIZE);
  const g = geometry(h.clusterBits, features.extendedL2, h.refcountOrder, virtualSize);

  if (h.refcountTableClusters === 0) {
    // QEMU: "Image does not contain a reference count table".
    throw fail('corrupt', 'refcount_table_clusters', 'refcount_table_clusters is 0: the image has no refcount table');
  }
  const refcountTableBytes = h.refcountTableClusters * clusterSize;
  if (refcountTableBytes > MAX_REFCOUNT_TABLE_BYTES) {
    throw fail('unsupported', 'refcount_table_clusters', `refcount table of ${refcountTableBytes} bytes exceeds the ${MAX_REFCOUNT_TABLE_BYTES / 2 ** 20} MiB limit`);
  }
  const refcountTableOffset = checkTable('refcount_table_offset', h.refcountTableOffset, refcountTableBytes, h.clusterBits, tableEnd);

  const l1Bytes = h.l1Size * 8;
  if (l1Bytes > MAX_L1_BYTES) {
    throw fail('unsupported', 'l1_size', `L1 table of ${h.l1Size} entries (${l1Bytes} bytes) exceeds the ${MAX_L1_BYTES / 2 ** 20} MiB limit`);
  }
  const needed = l1EntriesFor(headerSize, g);
  if (h.l1Size < needed) {
    throw fail('corrupt', 'l1_size', `L1 table of ${h.l1Size} entries is too small for a virtual size of ${headerSize} (needs ${needed})`);
  }
  const l1TableOffset = checkTable('l1_table_offset', h.l1TableOffset, l1Bytes, h.clusterBits, tableEnd);

  if (h.nbSnapshots > MAX_SNAPSHOTS) {
    throw fail('corrupt', 'nb_snapshots', `${h.nbSnapshots} snapshots exceed the limit of ${MAX_SNAPSHOTS}`);
  }
  // The snapshot table's length is only known while reading it; here its start must be sane.
  const snapshotsOffset = checkTable('snapshots_offset', h.snapshotsOffset, h.nbSnapshots > 0 ? 1 : 0, h.clusterBits, tableEnd);

  const { backingFileOffset, backingFileSize } = checkBacking(h, clusterSize);
  return {
    geometry: g,
    features,
    l1TableOffset,
    l1Size: h.l1Size,
    refcountTableOffset,
    refcountTableClusters: h.refcountTableClusters,
    snapshotsOffset,
    nbSnapshots: h.nbSnapshots,
    backingFileOffset,
    backingFileSize,
    compressionType,
  };
}

/** Checked first, before anything is read in units of clusters. */
export function checkClusterBits(h: Pick<Header, 'clusterBits'>): void {
  if (h.clusterBits < MIN_CLUSTER_BITS || h.clusterBits > MAX_CLUSTER_BITS) {
    throw fail('unsupported', 'cluster_bits', `cluster size 2^${h.clusterBits} is outside 2^${MIN_CLUSTER_BITS} .. 2^${MAX_CLUSTER_BITS}`);
  }
}

/**
 * header_length (v3): at least 104, within the first cluster. The spec also asks for a multiple of
 * 8; QEMU does not enforce it (the extensions simply start at header_length, and its header
 * writes keep that length), and neither do we, so that such an image opens and checks as in QEMU.
 */
export function checkHeaderLength(h: Pick<Header, 'version' | 'headerLength' | 'clusterBits'>): void {
  if (h.version !== 3) return;
  if (h.headerLength < HEADER_V3_MIN_LENGTH) {
    throw fail('corrupt', 'header_length', `header_length ${h.headerLength} is below the v3 minimum of 104`);
  }
  if (h.headerLength > 2 ** h.clusterBits) {
    throw fail('corrupt', 'header_length', `header_length ${h.headerLength} exceeds the cluster size ${2 ** h.clusterBits}`);
  }
}

export function decodeFeatures(h: Header): Features {
  const has = (mask: bigint, bit: bigint) => (mask & bit) !== 0n;
  return {
    dirty: has(h.incompatibleFeatures, INCOMPAT_DIRTY),
    corrupt: has(h.incompatibleFeatures, INCOMPAT_CORRUPT),
    externalDataFile: has(h.incompatibleFeatures, INCOMPAT_DATA_FILE),
    extendedL2: has(h.incompatibleFeatures, INCOMPAT_EXTL2),
    lazyRefcounts: has(h.compatibleFeatures, COMPAT_LAZY_REFCOUNTS),
    bitmapsConsistent: has(h.autoclearFeatures, AUTOCLEAR_BITMAPS),
    dataFileRaw: has(h.autoclearFeatures, AUTOCLEAR_DATA_FILE_RAW),
  };
}

function checkIncompatible(h: Header, featureNames: readonly FeatureNameEntry[]): void {
  const unknown = h.incompatibleFeatures & ~INCOMPAT_KNOWN;
  if (unknown === 0n) return;
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((unknown >> BigInt(bit)) & 1n) {
      const named = featureNames.find((f) => f.type === 0 && f.bit === bit);
      names.push(named ? `'${named.name}' (bit ${bit})` : `bit ${bit}`);
    }
  }
  throw fail('unsupported', 'incompatible_features', `unknown incompatible feature ${names.join(', ')} (mask ${hex(unknown)})`);
}

function checkCompression(h: Header): number {
  const flagged = (h.incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0n;
  if (flagged) {
    if (h.headerLength <= AT.compression_type) {
      throw fail('corrupt', 'compression_type', 'compression type bit is set but the header has no compression_type field');
    }
    if (h.compressionType === COMPRESSION_DEFLATE) {
      throw fail('corrupt', 'compression_type', 'compression type bit is set but compression_type is 0 (deflate)');
    }
  } else if (h.compressionType !== COMPRESSION_DEFLATE) {
    throw fail('corrupt', 'compression_type', `compression_type ${h.compressionType} is set without the compression type bit`);
  }
  if (h.compressionType !== COMPRESSION_DEFLATE && h.compressionType !== COMPRESSION_ZSTD) {
    throw fail('unsupported', 'compression_type', `unknown compression type ${h.compressionType}`);
  }
  return h.compressionType;
}

/** A table must be cluster aligned and lie inside the file. Returns its offset as a number. */
const INT64_MAX = (1n << 63n) - 1n;

function checkTable(field: Field, offset: bigint, bytes: number, clusterBits: number, fileSize: number): number {
  // Empty tables too (QEMU's qcow2_validate_table): the offset is cluster-aligned and at most 2^63 - 1.
  if (offset % (1n << BigInt(clusterBits)) !== 0n) {
    throw fail('corrupt', field, `${field} ${hex(offset)} is not aligned to a cluster`);
  }
  if (bytes === 0) {
    if (offset > INT64_MAX) throw fail('corrupt', field, `${field} ${hex(offset)} is beyond 2^63 - 1`);
    return Number(offset <= MAX_VIRTUAL_SIZE ? offset : 0n);
  }
  // check (tablesPastEnd) classifies a table over the header, as qemu-img check does (QEMU opens it).
  if (offset === 0n && fileSize !== Number.POSITIVE_INFINITY) {
    throw fail('corrupt', field, `${field} is 0: the table would overlap the header`);
  }
  if (fileSize === Number.POSITIVE_INFINITY && offset > BigInt(Number.MAX_SAFE_INTEGER) && offset <= INT64_MAX) {
    // check (tablesPastEnd): a table past any file reads as zeros, as QEMU reads it, and is
    // classified. The number is past 2^53 but may be inexact: the check names the header's value.
    return Number(offset);
  }
  if (fileSize !== Number.POSITIVE_INFINITY && offset + BigInt(bytes) > BigInt(fileSize)) {
    throw fail('corrupt', field, `table at ${hex(offset)} of ${bytes} bytes extends past the end of the file (${hex(fileSize)})`);
  }
  if (offset > BigInt(Number.MAX_SAFE_INTEGER) || !hostRangeFits(Number(offset), bytes)) {
    throw fail('corrupt', field, `${field} ${hex(offset)}: ${hostRangeProblem(Number(offset), bytes)}`);
  }
  return Number(offset);
}

function checkBacking(h: Header, clusterSize: number): { backingFileOffset: number; backingFileSize: number } {
  if (h.backingFileOffset === 0n) return { backingFileOffset: 0, backingFileSize: 0 };
  if (h.backingFileSize > MAX_BACKING_FILE_NAME) {
    throw fail('corrupt', 'backing_file_size', `backing file name of ${h.backingFileSize} bytes exceeds ${MAX_BACKING_FILE_NAME} bytes`);
  }
  if (h.backingFileOffset + BigInt(h.backingFileSize) > BigInt(clusterSize)) {
    throw fail('corrupt', 'backing_file_offset', `backing file name at ${hex(h.backingFileOffset)} does not fit in the first cluster`);
  }
  return { backingFileOffset: Number(h.backingFileOffset), backingFileSize: h.backingFileSize };
}
