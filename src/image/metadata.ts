/**
 * Reads and checks an image's fixed metadata: header, extensions, backing file name, snapshot table
 * and bitmap directory. Every read is bounded by a named limit before it is made, so a hostile
 * header cannot make us allocate or read more than those limits.
 */
import { corrupt, hex, truncated, unsupported } from '../errors.js';
import { decodeString } from '../format/bytes.js';
import { bitmapEntryProblem, bitmapEntrySize, decodeBitmapDirectory, type BitmapDirectoryEntry } from '../format/bitmap.js';
import { CRYPT_LUKS, HEADER_V3_MIN_LENGTH, QCOW2_MAGIC } from '../format/constants.js';
import { decodeExtensions, type FeatureNameEntry, type HeaderExtension } from '../format/extensions.js';
import { decodeHeader, type Header } from '../format/header.js';
import { decodeLuksHeader, LUKS_HEADER_SIZE, type LuksHeader } from '../format/luks.js';
import { decodeSnapshotTable, type SnapshotEntry } from '../format/snapshot.js';
import { checkClusterBits, checkHeaderLength, type Layout, validateHeader, type ValidateOptions } from '../format/validate.js';
import type { BlockFile } from '../io/block-file.js';
import { readPadded } from '../io/read-padded.js';
import { MAX_BITMAP_DIRECTORY_BYTES, MAX_BITMAPS, MAX_SNAPSHOT_EXTRA_DATA, MAX_SNAPSHOT_TABLE_BYTES } from '../limits.js';

export interface BitmapsExtension {
  nbBitmaps: number;
  directorySize: bigint;
  directoryOffset: bigint;
}

export interface ImageMetadata {
  fileSize: number;
  header: Header;
  layout: Layout;
  extensions: HeaderExtension[];
  featureTable: FeatureNameEntry[];
  backingFile: string | undefined;
  backingFormat: string | undefined;
  dataFile: string | undefined;
  bitmapsExtension: BitmapsExtension | undefined;
  cryptoHeader: { offset: bigint; length: bigint } | undefined;
  luks: LuksHeader | undefined;
  snapshots: SnapshotEntry[];
  /** Bytes the snapshot table takes, padding included. */
  snapshotTableSize: number;
  bitmaps: BitmapDirectoryEntry[];
}

export async function readMetadata(file: BlockFile, opts: ValidateOptions = {}): Promise<ImageMetadata> {
  const fileSize = await file.size();
  const header = await readHeader(file, fileSize);
  checkClusterBits(header);
  const clusterSize = 2 ** header.clusterBits;
  // Extensions end where the backing file name starts, or at the end of the first cluster.
  const extLimit = header.backingFileOffset > 0n && header.backingFileOffset < BigInt(clusterSize)
    ? Number(header.backingFileOffset)
    : clusterSize;
  let first = await file.read(0, clusterSize);
  if (opts.tablesPastEnd && first.byteLength < clusterSize) {
    // check classifies a truncated image as QEMU does, and QEMU reads past the end of the file as zeros.
    const padded = new Uint8Array(clusterSize);
    padded.set(first);
    first = padded;
  }
  const extensions = lastOfEachKind(decodeExtensions(first, header.headerLength, extLimit).extensions);
  const featureTable = extensions.flatMap((e) => (e.kind === 'feature-table' ? e.entries : []));
  const layout = validateHeader(header, fileSize, featureTable, opts);

  const backingFile = layout.backingFileOffset > 0 ? await readBackingName(first, layout, opts.tablesPastEnd ? Number.POSITIVE_INFINITY : fileSize) : undefined;
  const find = <K extends HeaderExtension['kind']>(kind: K) =>
    extensions.find((e): e is Extract<HeaderExtension, { kind: K }> => e.kind === kind);
  const bitmapsExt = find('bitmaps');
  const crypto = find('crypto-header');
  const cryptoHeader = crypto ? { offset: crypto.offset, length: crypto.length } : undefined;
  if (cryptoHeader && header.cryptMethod !== CRYPT_LUKS) {
    // QEMU: "CRYPTO header extension only expected with LUKS encryption method".
    throw corrupt(`a full disk encryption header extension on an image whose crypt_method is ${header.cryptMethod}, not LUKS (2)`, {
      field: 'crypt_method',
      offset: 32,
    });
  }
  return {
    fileSize,
    header,
    layout,
    extensions,
    featureTable,
    backingFile,
    backingFormat: find('backing-format')?.name,
    dataFile: find('data-file')?.name,
    bitmapsExtension: bitmapsExt,
    cryptoHeader,
    luks: header.cryptMethod === CRYPT_LUKS && cryptoHeader ? await readLuks(file, cryptoHeader, fileSize) : undefined,
    ...(await readSnapshots(file, layout, fileSize, opts.tablesPastEnd === true)),
    bitmaps: bitmapsExt ? await readBitmapDirectory(file, bitmapsExt, layout, fileSize) : [],
  };
}

async function readHeader(file: BlockFile, fileSize: number): Promise<Header> {
  const start = await file.read(0, Math.min(fileSize, 4096));
  if (start.byteLength < 8) {
    throw truncated(`file of ${fileSize} bytes is too short to be a qcow2 image`, { field: 'magic', offset: 0 });
  }
  const peek = new DataView(start.buffer, start.byteOffset, start.byteLength);
  if (start.byteLength >= HEADER_V3_MIN_LENGTH && peek.getUint32(0) === QCOW2_MAGIC && peek.getUint32(4) === 3) {
    // Check what sizes the rest of the header before trusting it for a read.
    const early = { clusterBits: peek.getUint32(20), headerLength: peek.getUint32(100), version: 3 as const };
    checkClusterBits(early);
    checkHeaderLength(early);
    if (early.headerLength > start.byteLength) return decodeHeader(await file.read(0, early.headerLength));
  }
  return decodeHeader(start);
}

/**
 * An extension kind QEMU knows that appears more than once: the last one counts, as in QEMU's
 * qcow2_read_extensions (each one read overwrites the one before), and only it is kept (so that a
 * rewritten header has one, as QEMU's has). Unknown extensions are all kept.
 */
function lastOfEachKind(extensions: readonly HeaderExtension[]): HeaderExtension[] {
  return extensions.filter((e, i) => e.kind === 'unknown' || !extensions.slice(i + 1).some((later) => later.kind === e.kind));
}

/** The backing file name; `fileSize` is infinite where the first cluster was padded with zeros (check). */
async function readBackingName(first: Uint8Array, layout: Layout, fileSize: number): Promise<string> {
  const end = layout.backingFileOffset + layout.backingFileSize;
  if (end > fileSize) {
    throw truncated('the backing file name runs past the end of the file', {
      field: 'backing_file_offset',
      offset: 8,
    });
  }
  return decodeString(first.subarray(layout.backingFileOffset, end));
}

async function readLuks(file: BlockFile, ext: { offset: bigint; length: bigint }, fileSize: number): Promise<LuksHeader> {
  if (ext.offset + BigInt(LUKS_HEADER_SIZE) > BigInt(fileSize)) {
    throw truncated(`the LUKS header at ${hex(ext.offset)} lies past the end of the file`, { field: 'crypto_header.offset' });
  }
  const offset = Number(ext.offset);
  return decodeLuksHeader(await file.read(offset, LUKS_HEADER_SIZE), offset);
}

/**
 * The snapshot table's length is known only by walking it, so it is read in growing windows up to
 * QEMU's 64 MiB limit.
 */
/** QEMU refuses an image (open, info, check) whose snapshot entry has more extra data than it allows. */
function checkExtraData(entries: readonly SnapshotEntry[]): void {
  entries.forEach((e, i) => {
    if (e.extraData.byteLength > MAX_SNAPSHOT_EXTRA_DATA) {
      throw corrupt(`Too much extra metadata in snapshot table entry ${i} (${e.extraData.byteLength} bytes, at most ${MAX_SNAPSHOT_EXTRA_DATA})`, { field: `snapshot[${i}].extra_data_size` });
    }
  });
}

async function readSnapshots(
  file: BlockFile,
  layout: Layout,
  fileSize: number,
  pastEnd: boolean,
): Promise<{ snapshots: SnapshotEntry[]; snapshotTableSize: number }> {
  if (layout.nbSnapshots === 0) return { snapshots: [], snapshotTableSize: 0 };
  const offset = layout.snapshotsOffset;
  // check (tablesPastEnd): what lies past the end of the file reads as zeros, as QEMU reads it.
  const available = pastEnd ? MAX_SNAPSHOT_TABLE_BYTES : Math.min(fileSize - offset, MAX_SNAPSHOT_TABLE_BYTES);
  let window = Math.min(available, 64 * 1024);
  for (;;) {
    const bytes = new Uint8Array(window);
    const inFile = Math.max(0, Math.min(window, fileSize - offset));
    if (inFile > 0) bytes.set(await file.read(offset, inFile));
    let decoded: { entries: SnapshotEntry[]; size: number };
    try {
      decoded = decodeSnapshotTable(bytes, layout.nbSnapshots, offset);
    } catch (err) {
      if (window >= available) {
        if (available === MAX_SNAPSHOT_TABLE_BYTES) {
          throw unsupported(`the snapshot table exceeds the ${MAX_SNAPSHOT_TABLE_BYTES / 2 ** 20} MiB limit`, { field: 'snapshots_offset', offset: 64 });
        }
        throw err;
      }
      window = Math.min(available, window * 4);
      continue;
    }
    checkExtraData(decoded.entries);
    return { snapshots: decoded.entries, snapshotTableSize: decoded.size };
  }
}

async function readBitmapDirectory(
  file: BlockFile,
  ext: BitmapsExtension,
  layout: Layout,
  fileSize: number,
): Promise<BitmapDirectoryEntry[]> {
  if (ext.nbBitmaps === 0 || ext.nbBitmaps > MAX_BITMAPS) {
    throw corrupt(`bitmaps extension claims ${ext.nbBitmaps} bitmaps (must be 1 .. ${MAX_BITMAPS})`, { field: 'nb_bitmaps' });
  }
  if (ext.directorySize > BigInt(MAX_BITMAP_DIRECTORY_BYTES)) {
    throw unsupported(`bitmap directory of ${ext.directorySize} bytes exceeds the ${MAX_BITMAP_DIRECTORY_BYTES / 2 ** 20} MiB limit`, { field: 'bitmap_directory_size' });
  }
  if (ext.directoryOffset % BigInt(layout.geometry.clusterSize) !== 0n || ext.directoryOffset === 0n) {
    throw corrupt(`bitmap directory offset ${hex(ext.directoryOffset)} is not a nonzero cluster-aligned offset`, {
      field: 'bitmap_directory_offset',
    });
  }
  // A directory past the end of the file reads as zeros, as in QEMU (a truncated image still opens).
  const offset = Number(ext.directoryOffset);
  const bytes = await readPadded(file, offset, Number(ext.directorySize), fileSize);
  const { entries, size } = decodeBitmapDirectory(bytes, ext.nbBitmaps, offset);
  if (size !== bytes.byteLength) {
    throw corrupt(`bitmap directory entries take ${size} bytes but the extension says ${bytes.byteLength}`, {
      field: 'bitmap_directory_size',
      offset,
    });
  }
  if (layout.features.bitmapsConsistent) {
    // QEMU loads consistent bitmaps when it opens the image, and refuses it when one breaks its rules.
    let at = offset;
    entries.forEach((e, i) => {
      const problem = bitmapEntryProblem(e, layout.geometry.clusterSize, layout.geometry.virtualSize);
      if (problem !== undefined) throw corrupt(`bitmap '${e.name}' does not satisfy QEMU's constraints: ${problem}`, { field: `bitmap_directory[${i}]`, offset: at });
      at += bitmapEntrySize(e);
    });
  }
  return entries;
}
