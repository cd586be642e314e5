/**
 * Runs both decoders over the same bytes — the hand-written codecs (src/format) and the parsers
 * generated from spec/*.ksy (src/spec) — and lists every field where they differ. Both sides are
 * first put in one plain shape, with 64-bit values as exact bigints.
 */
import { decodeBitmapDirectory, decodeBitmapTable } from '../../format/bitmap.js';
import { view } from '../../format/bytes.js';
import { decodeCompressedDescriptor } from '../../format/compressed.js';
import { decodeExtensions, type HeaderExtension } from '../../format/extensions.js';
import { decodeHeader } from '../../format/header.js';
import { decodeL1Table } from '../../format/l1.js';
import { decodeLuksHeader } from '../../format/luks.js';
import { decodeL2Entry, decodeStandardDescriptor } from '../../format/l2.js';
import { decodeRefcountBlock, decodeRefcountTable } from '../../format/refcount.js';
import { decodeSnapshotTable } from '../../format/snapshot.js';
import * as k from '../../spec/kaitai.js';
import { type Plain, differences } from './plain.js';
import type { Structure } from './structures.js';

export interface Disagreement {
  structure: Structure['kind'];
  offset: number;
  path: string;
  ours: string;
  kaitai: string;
}

export function compareDecoders(s: Structure): Disagreement[] {
  const [ours, theirs] = normalized(s);
  return differences(ours, theirs).map((d) => ({ structure: s.kind, offset: s.offset, ...d }));
}

function normalized(s: Structure): [Plain, Plain] {
  switch (s.kind) {
    case 'header':
      return [oursHeader(s.bytes), kaitaiHeader(s.bytes)];
    case 'l1-table':
      return [
        decodeL1Table(s.bytes, s.entries).map((e) => ({ copied: e.copied, reservedHigh: e.reservedHigh, offset: e.l2Offset, reservedLow: e.reservedLow })),
        k.parseL1Table(s.bytes, s.entries).entries.map((e) => ({ copied: e.copied, reservedHigh: e.reservedHi, offset: e.offset, reservedLow: e.reservedLo })),
      ];
    case 'l2-table':
      return [oursL2(s), kaitaiL2(s)];
    case 'refcount-table':
      return [
        decodeRefcountTable(s.bytes, s.entries).map((e) => ({
          offset: (BigInt(e.offsetHighBits) << 56n) | BigInt(e.blockOffset),
          reserved: e.reserved,
        })),
        k.parseRefcountTable(s.bytes, s.entries).entries.map((e) => ({
          offset: (BigInt(e.offsetHi) << 32n) | (BigInt(e.offsetLo) << 9n),
          reserved: e.reserved,
        })),
      ];
    case 'refcount-block':
      return [
        decodeRefcountBlock(s.bytes, s.refcountOrder, s.entries),
        k.refcountValues(k.parseRefcountBlock(s.bytes, s.refcountOrder, s.entries)),
      ];
    case 'snapshot-table':
      return [oursSnapshots(s), kaitaiSnapshots(s)];
    case 'bitmap-directory':
      return [
        decodeBitmapDirectory(s.bytes, s.entries, s.offset).entries.map((e) => ({ ...e, extraData: hexOf(e.extraData) })),
        k.parseBitmapDirectory(s.bytes, s.entries).entries.map((e) => ({
          bitmapTableOffset: k.joinU64(e.bitmapTableOffsetHi, e.bitmapTableOffsetLo),
          bitmapTableSize: e.bitmapTableSize,
          flags: e.flags,
          type: e.type,
          granularityBits: e.granularityBits,
          name: e.name,
          extraData: hexOf(e.extraData),
        })),
      ];
    case 'bitmap-table':
      return [
        decodeBitmapTable(s.bytes, s.entries).map((e) => ({ ...e })),
        k.parseBitmapTable(s.bytes, s.entries).entries.map((e) => ({
          hostOffset: e.offset,
          allOnes: e.allOnes,
          reservedLow: e.reservedLo,
          reservedHigh: e.reservedHi,
        })),
      ];
    case 'luks-header':
      return [oursLuks(s.bytes), kaitaiLuks(s.bytes)];
  }
}

export function hexOf(bytes: Uint8Array | undefined): string {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') : '';
}

function oursHeader(bytes: Uint8Array): Plain {
  const h = decodeHeader(bytes);
  const clusterSize = 2 ** h.clusterBits;
  const limit = h.backingFileOffset > 0n && h.backingFileOffset < BigInt(clusterSize) ? Number(h.backingFileOffset) : clusterSize;
  const { extensions } = decodeExtensions(bytes, h.headerLength, limit);
  const backing = h.backingFileOffset > 0n ? bytes.subarray(Number(h.backingFileOffset), Number(h.backingFileOffset) + h.backingFileSize) : undefined;
  return {
    ...h,
    tail: hexOf(h.tail),
    extensions: extensions.map(oursExtension),
    backingFileName: backing ? new TextDecoder().decode(backing) : null,
  };
}

function oursExtension(e: HeaderExtension): Plain {
  switch (e.kind) {
    case 'backing-format':
      return { type: 0xe2792aca, name: e.name };
    case 'data-file':
      return { type: 0x44415441, name: e.name };
    case 'feature-table':
      return { type: 0x6803f857, entries: e.entries.map((f) => ({ type: f.type, bit: f.bit, name: f.name })) };
    case 'bitmaps':
      return { type: 0x23852875, nbBitmaps: e.nbBitmaps, reserved: e.reserved, directorySize: e.directorySize, directoryOffset: e.directoryOffset };
    case 'crypto-header':
      return { type: 0x0537be77, offset: e.offset, length: e.length };
    case 'unknown':
      return { type: e.type, data: hexOf(e.data) };
  }
}

function kaitaiHeader(bytes: Uint8Array): Plain {
  const h = k.parseHeader(bytes);
  const v3 = h.version === 3;
  const u64 = (hi: number | undefined, lo: number | undefined) => k.joinU64(hi ?? 0, lo ?? 0);
  const extensions = (h.extensions ?? []).filter((e) => e.type !== 0).map(kaitaiExtension);
  return {
    version: h.version,
    backingFileOffset: u64(h.backingFileOffsetHi, h.backingFileOffsetLo),
    backingFileSize: h.backingFileSize,
    clusterBits: h.clusterBits,
    size: u64(h.sizeHi, h.sizeLo),
    cryptMethod: h.cryptMethod,
    l1Size: h.l1Size,
    l1TableOffset: u64(h.l1TableOffsetHi, h.l1TableOffsetLo),
    refcountTableOffset: u64(h.refcountTableOffsetHi, h.refcountTableOffsetLo),
    refcountTableClusters: h.refcountTableClusters,
    nbSnapshots: h.nbSnapshots,
    snapshotsOffset: u64(h.snapshotsOffsetHi, h.snapshotsOffsetLo),
    incompatibleFeatures: u64(h.incompatibleFeaturesHi, h.incompatibleFeaturesLo),
    compatibleFeatures: u64(h.compatibleFeaturesHi, h.compatibleFeaturesLo),
    autoclearFeatures: u64(h.autoclearFeaturesHi, h.autoclearFeaturesLo),
    refcountOrder: v3 ? (h.refcountOrder ?? 0) : 4,
    headerLength: v3 ? (h.headerLength ?? 0) : 72,
    compressionType: h.compressionType ?? 0,
    tail: hexOf(h.unknownHeaderFields),
    extensions,
    backingFileName: h.hasBackingFile ? (h.backingFileName ?? null) : null,
  };
}

function kaitaiExtension(e: k.Qcow2Header.HeaderExtension): Plain {
  const d = e.data;
  if (d instanceof Uint8Array) return { type: e.type, data: hexOf(d) };
  if (d instanceof k.Qcow2Header.BackingFileFormatName || d instanceof k.Qcow2Header.ExternalDataFileName) {
    return { type: e.type, name: d.name };
  }
  if (d instanceof k.Qcow2Header.FeatureNameTable) {
    return { type: e.type, entries: d.entries.map((f) => ({ type: f.type, bit: f.bitNumber, name: f.name })) };
  }
  if (d instanceof k.Qcow2Header.BitmapsExtension) {
    return {
      type: e.type,
      nbBitmaps: d.nbBitmaps,
      reserved: d.reserved,
      directorySize: k.joinU64(d.bitmapDirectorySizeHi, d.bitmapDirectorySizeLo),
      directoryOffset: k.joinU64(d.bitmapDirectoryOffsetHi, d.bitmapDirectoryOffsetLo),
    };
  }
  return { type: e.type, offset: k.joinU64(d.offsetHi, d.offsetLo), length: k.joinU64(d.lengthHi, d.lengthLo) };
}

function oursL2(s: Extract<Structure, { kind: 'l2-table' }>): Plain {
  const dv = view(s.bytes);
  const size = s.extendedL2 ? 16 : 8;
  const out: Plain[] = [];
  for (let i = 0; i < s.entries; i++) {
    const e = decodeL2Entry(dv, i * size, s.extendedL2);
    const bitmaps: Record<string, Plain> = s.extendedL2 ? { zeroBitmap: e.zeroBitmap, allocBitmap: e.allocBitmap } : {};
    if (e.compressed) {
      const c = decodeCompressedDescriptor(e, s.clusterBits);
      out.push({ copied: e.copied, compressed: true, offset: (BigInt(c.offsetHighBits) << 53n) | BigInt(c.hostOffset), additionalSectors: c.additionalSectors, ...bitmaps });
    } else {
      const d = decodeStandardDescriptor(e);
      out.push({ copied: e.copied, compressed: false, zero: d.zero, offset: d.hostOffset, reservedLow: d.reservedLow, reservedHigh: d.reservedHigh, ...bitmaps });
    }
  }
  return out;
}

function kaitaiL2(s: Extract<Structure, { kind: 'l2-table' }>): Plain {
  const table = k.parseL2Table(s.bytes, { extendedL2: s.extendedL2, clusterBits: s.clusterBits, numEntries: s.entries });
  return table.entries.map((e): Plain => {
    const bitmaps: Record<string, Plain> = s.extendedL2 ? { zeroBitmap: e.zeroBitmap ?? null, allocBitmap: e.allocBitmap ?? null } : {};
    if (e.compressed) {
      const c = e.compressedDescriptor;
      return {
        copied: e.copied,
        compressed: true,
        offset: c ? (BigInt(c.offsetHi) << 32n) | BigInt(c.offsetLo) : null,
        additionalSectors: c ? c.nbSectors : null,
        ...bitmaps,
      };
    }
    return {
      copied: e.copied,
      compressed: false,
      zero: e.readsAsZero ?? null,
      offset: e.offset ?? null,
      reservedLow: e.reservedLo ?? null,
      reservedHigh: e.reservedHi ?? null,
      ...bitmaps,
    };
  });
}

function oursSnapshots(s: Extract<Structure, { kind: 'snapshot-table' }>): Plain {
  return decodeSnapshotTable(s.bytes, s.entries, s.offset).entries.map((e) => {
    const known = e.extra.icount !== undefined ? 24 : e.extra.diskSize !== undefined ? 16 : e.extra.vmStateSizeLarge !== undefined ? 8 : 0;
    return {
      l1TableOffset: e.l1TableOffset,
      l1Size: e.l1Size,
      id: e.id,
      name: e.name,
      dateSec: e.dateSec,
      dateNsec: e.dateNsec,
      vmClockNsec: e.vmClockNsec,
      vmStateSize: e.vmStateSize,
      extraDataSize: e.extraData.byteLength,
      vmStateSizeLarge: e.extra.vmStateSizeLarge ?? null,
      diskSize: e.extra.diskSize ?? null,
      icount: e.extra.icount === undefined ? null : BigInt.asUintN(64, e.extra.icount),
      unknownExtraData: hexOf(e.extraData.subarray(known)),
    };
  });
}

function kaitaiSnapshots(s: Extract<Structure, { kind: 'snapshot-table' }>): Plain {
  const opt = (hi: number | undefined, lo: number | undefined) => (hi === undefined || lo === undefined ? null : k.joinU64(hi, lo));
  return k.parseSnapshotTable(s.bytes, s.entries).entries.map((e) => ({
    l1TableOffset: k.joinU64(e.l1TableOffsetHi, e.l1TableOffsetLo),
    l1Size: e.l1Size,
    id: e.idStr,
    name: e.name,
    dateSec: e.dateSec,
    dateNsec: e.dateNsec,
    vmClockNsec: k.joinU64(e.vmClockNsecHi, e.vmClockNsecLo),
    vmStateSize: e.vmStateSize,
    extraDataSize: e.extraDataSize,
    vmStateSizeLarge: opt(e.extraData.vmStateSizeLargeHi, e.extraData.vmStateSizeLargeLo),
    diskSize: opt(e.extraData.diskSizeHi, e.extraData.diskSizeLo),
    icount: opt(e.extraData.icountHi, e.extraData.icountLo),
    unknownExtraData: hexOf(e.extraData.unknownExtraData),
  }));
}

function oursLuks(bytes: Uint8Array): Plain {
  const h = decodeLuksHeader(bytes);
  return {
    ...h,
    mkDigest: hexOf(h.mkDigest),
    mkDigestSalt: hexOf(h.mkDigestSalt),
    slots: h.slots.map((slot) => ({ ...slot, salt: hexOf(slot.salt) })),
  };
}

function kaitaiLuks(bytes: Uint8Array): Plain {
  const h = k.parseLuksHeader(bytes);
  return {
    version: h.version,
    cipherName: h.cipherName,
    cipherMode: h.cipherMode,
    hashSpec: h.hashSpec,
    payloadOffset: h.payloadOffset,
    keyBytes: h.keyBytes,
    mkDigest: hexOf(h.mkDigest),
    mkDigestSalt: hexOf(h.mkDigestSalt),
    mkDigestIter: h.mkDigestIter,
    uuid: h.uuid,
    slots: h.keySlots.map((slot) => ({
      active: slot.active,
      iterations: slot.iterations,
      salt: hexOf(slot.salt),
      keyMaterialOffset: slot.keyMaterialOffset,
      stripes: slot.stripes,
    })),
  };
}
