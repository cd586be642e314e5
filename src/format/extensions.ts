/**
 * Header extensions (spec: "Header extensions"): directly after the header, each
 *   u32 type, u32 length, data[length], padding to a multiple of 8,
 * ending with type 0. They must fit in the first cluster.
 */
import { corrupt, truncated } from '../errors.js';
import { MAX_BACKING_FORMAT_BYTES } from '../limits.js';
import { align8, decodeString, encodeString, readU64, view, writeU64 } from './bytes.js';
import {
  BITMAPS_EXT_SIZE,
  CRYPTO_HEADER_EXT_SIZE,
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO_HEADER,
  EXT_DATA_FILE,
  EXT_END,
  EXT_FEATURE_TABLE,
  FEATURE_NAME_SIZE,
  FEATURE_TABLE_ENTRY_SIZE,
} from './constants.js';

export interface FeatureNameEntry {
  /** 0 incompatible, 1 compatible, 2 autoclear (other values are kept as read). */
  type: number;
  bit: number;
  name: string;
}

/** QEMU's feature name table, as qcow2_update_header writes it. */
export const QEMU_FEATURE_TABLE: readonly FeatureNameEntry[] = [
  { type: 0, bit: 0, name: 'dirty bit' },
  { type: 0, bit: 1, name: 'corrupt bit' },
  { type: 0, bit: 2, name: 'external data file' },
  { type: 0, bit: 3, name: 'compression type' },
  { type: 0, bit: 4, name: 'extended L2 entries' },
  { type: 1, bit: 0, name: 'lazy refcounts' },
  { type: 2, bit: 0, name: 'bitmaps' },
  { type: 2, bit: 1, name: 'raw external data' },
];

export type HeaderExtension =
  | { kind: 'backing-format'; name: string }
  | { kind: 'feature-table'; entries: FeatureNameEntry[] }
  | {
      kind: 'bitmaps';
      nbBitmaps: number;
      reserved: number;
      directorySize: bigint;
      directoryOffset: bigint;
    }
  | { kind: 'crypto-header'; offset: bigint; length: bigint }
  | { kind: 'data-file'; name: string }
  | { kind: 'unknown'; type: number; data: Uint8Array };

export interface DecodedExtensions {
  extensions: HeaderExtension[];
  /** File offset of each extension's type field, parallel to `extensions`. */
  offsets: number[];
  /** Offset just past the end marker (or `limit` when the area ends without one). */
  end: number;
}

/**
 * Decodes the extensions of `area` (the first cluster, or a prefix of it), starting at `start`
 * and never reading past `limit` (the cluster size).
 */
export function decodeExtensions(area: Uint8Array, start: number, limit: number): DecodedExtensions {
  const end = Math.min(limit, area.byteLength);
  const dv = view(area);
  const extensions: HeaderExtension[] = [];
  const offsets: number[] = [];
  let at = start;
  while (at < end) {
    if (at + 8 > end) throw overrun(end < limit, 'header_extension', at, `header extension at 0x${at.toString(16)}`);
    const type = dv.getUint32(at);
    const length = dv.getUint32(at + 4);
    // The length is checked before the type, the end marker's too (as QEMU's qcow2_read_extensions).
    if (length > end - at - 8) {
      const what = `header extension 0x${type.toString(16)} of ${length} bytes at 0x${at.toString(16)}`;
      throw overrun(length <= limit - at - 8, 'header_extension.length', at + 4, what);
    }
    if (type === EXT_END) return { extensions, offsets, end: at + 8 };
    const data = area.subarray(at + 8, at + 8 + length);
    extensions.push(decodeExtension(type, data, at));
    offsets.push(at);
    at += 8 + align8(length);
  }
  if (end < limit) throw overrun(true, 'header_extension', at, 'the header extension area');
  return { extensions, offsets, end: at };
}

/** An extension that does not fit: the file ends too early (truncated) or the cluster does (corrupt). */
function overrun(fileTooShort: boolean, field: string, offset: number, what: string) {
  return fileTooShort
    ? truncated(`${what} runs past the end of the file`, { field, offset })
    : corrupt(`${what} overruns the header extension area (the first cluster, or up to the backing file name)`, { field, offset });
}

function decodeExtension(type: number, data: Uint8Array, at: number): HeaderExtension {
  switch (type) {
    case EXT_BACKING_FORMAT:
      if (data.byteLength > MAX_BACKING_FORMAT_BYTES) {
        throw corrupt(`backing format extension of ${data.byteLength} bytes (at most ${MAX_BACKING_FORMAT_BYTES})`, { field: 'header_extension.length', offset: at + 4 });
      }
      return { kind: 'backing-format', name: decodeString(data) };
    case EXT_DATA_FILE:
      return { kind: 'data-file', name: decodeString(data) };
    case EXT_FEATURE_TABLE:
      return { kind: 'feature-table', entries: decodeFeatureTable(data) };
    case EXT_BITMAPS:
      return decodeBitmapsExtension(data, at);
    case EXT_CRYPTO_HEADER:
      return decodeCryptoExtension(data, at);
    default:
      return { kind: 'unknown', type, data: data.slice() };
  }
}

function decodeFeatureTable(data: Uint8Array): FeatureNameEntry[] {
  const entries: FeatureNameEntry[] = [];
  // Trailing bytes that do not make a whole entry are ignored, as QEMU does.
  for (let at = 0; at + FEATURE_TABLE_ENTRY_SIZE <= data.byteLength; at += FEATURE_TABLE_ENTRY_SIZE) {
    const raw = data.subarray(at + 2, at + 2 + FEATURE_NAME_SIZE);
    const nul = raw.indexOf(0);
    entries.push({
      type: data[at] ?? 0,
      bit: data[at + 1] ?? 0,
      name: decodeString(nul === -1 ? raw : raw.subarray(0, nul)),
    });
  }
  return entries;
}

function decodeBitmapsExtension(data: Uint8Array, at: number): HeaderExtension {
  if (data.byteLength !== BITMAPS_EXT_SIZE) {
    throw corrupt(`bitmaps extension has length ${data.byteLength}, expected 24`, {
      field: 'bitmaps_extension.length',
      offset: at + 4,
    });
  }
  const dv = view(data);
  return {
    kind: 'bitmaps',
    nbBitmaps: dv.getUint32(0),
    reserved: dv.getUint32(4),
    directorySize: readU64(dv, 8),
    directoryOffset: readU64(dv, 16),
  };
}

function decodeCryptoExtension(data: Uint8Array, at: number): HeaderExtension {
  if (data.byteLength !== CRYPTO_HEADER_EXT_SIZE) {
    throw corrupt(`full disk encryption extension has length ${data.byteLength}, expected 16`, {
      field: 'crypto_header_extension.length',
      offset: at + 4,
    });
  }
  const dv = view(data);
  return { kind: 'crypto-header', offset: readU64(dv, 0), length: readU64(dv, 8) };
}

/** Encodes the extensions followed by the end marker. */
export function encodeExtensions(extensions: readonly HeaderExtension[]): Uint8Array {
  const parts = extensions.map(encodeExtension);
  const total = parts.reduce((n, p) => n + p.byteLength, 0) + 8;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out; // the last 8 bytes are the zero end marker
}

function encodeExtension(ext: HeaderExtension): Uint8Array {
  const { type, data } = extensionPayload(ext);
  const out = new Uint8Array(8 + align8(data.byteLength));
  const dv = view(out);
  dv.setUint32(0, type);
  dv.setUint32(4, data.byteLength);
  out.set(data, 8);
  return out;
}

function extensionPayload(ext: HeaderExtension): { type: number; data: Uint8Array } {
  switch (ext.kind) {
    case 'backing-format':
      return { type: EXT_BACKING_FORMAT, data: encodeString(ext.name) };
    case 'data-file':
      return { type: EXT_DATA_FILE, data: encodeString(ext.name) };
    case 'feature-table': {
      const data = new Uint8Array(ext.entries.length * FEATURE_TABLE_ENTRY_SIZE);
      ext.entries.forEach((e, i) => {
        const at = i * FEATURE_TABLE_ENTRY_SIZE;
        data[at] = e.type;
        data[at + 1] = e.bit;
        data.set(encodeString(e.name).subarray(0, FEATURE_NAME_SIZE), at + 2);
      });
      return { type: EXT_FEATURE_TABLE, data };
    }
    case 'bitmaps': {
      const data = new Uint8Array(BITMAPS_EXT_SIZE);
      const dv = view(data);
      dv.setUint32(0, ext.nbBitmaps);
      dv.setUint32(4, ext.reserved);
      writeU64(dv, 8, ext.directorySize);
      writeU64(dv, 16, ext.directoryOffset);
      return { type: EXT_BITMAPS, data };
    }
    case 'crypto-header': {
      const data = new Uint8Array(CRYPTO_HEADER_EXT_SIZE);
      const dv = view(data);
      writeU64(dv, 0, ext.offset);
      writeU64(dv, 8, ext.length);
      return { type: EXT_CRYPTO_HEADER, data };
    }
    case 'unknown':
      return { type: ext.type, data: ext.data };
  }
}
