/**
 * What `qemu-img info --output=json` reports for a qcow2 image (and a raw one), computed from our metadata. Keys
 * and their order follow QEMU 7.2's output.
 */
import { CRYPT_AES, CRYPT_LUKS } from '../format/constants.js';
import type { LuksHeader } from '../format/luks.js';
import { LUKS_SLOT_ACTIVE } from '../format/luks.js';
import type { SnapshotEntry } from '../format/snapshot.js';
import { BITMAP_FLAG_AUTO, BITMAP_FLAG_IN_USE } from '../format/constants.js';
import type { ImageMetadata } from './metadata.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export function imageInfo(meta: ImageMetadata, filename: string, actualSize: number): JsonObject {
  const info: JsonObject = {};
  if (meta.backingFormat !== undefined) info['backing-filename-format'] = meta.backingFormat;
  if (meta.snapshots.length > 0) info['snapshots'] = meta.snapshots.map(snapshotInfo);
  info['virtual-size'] = meta.layout.geometry.virtualSize;
  info['filename'] = filename;
  info['cluster-size'] = meta.layout.geometry.clusterSize;
  info['format'] = 'qcow2';
  info['actual-size'] = actualSize;
  info['format-specific'] = { type: 'qcow2', data: formatSpecific(meta) };
  if (meta.header.cryptMethod !== 0) info['encrypted'] = true;
  if (meta.backingFile !== undefined) {
    info['full-backing-filename'] = fullBackingFilename(filename, meta.backingFile);
    info['backing-filename'] = meta.backingFile;
  }
  info['dirty-flag'] = meta.layout.features.dirty;
  return info;
}

function formatSpecific(meta: ImageMetadata): JsonObject {
  const { header, layout } = meta;
  const data: JsonObject = {};
  data['compat'] = header.version === 2 ? '0.10' : '1.1';
  data['compression-type'] = layout.compressionType === 1 ? 'zstd' : 'zlib';
  if (header.version === 2) {
    data['refcount-bits'] = 2 ** header.refcountOrder;
    if (header.cryptMethod !== 0) data['encrypt'] = encryptInfo(meta);
    return data;
  }
  data['lazy-refcounts'] = layout.features.lazyRefcounts;
  if (meta.bitmaps.length > 0) data['bitmaps'] = meta.bitmaps.map(bitmapInfo);
  data['refcount-bits'] = 2 ** header.refcountOrder;
  if (layout.features.externalDataFile) {
    if (meta.dataFile !== undefined) data['data-file'] = meta.dataFile;
    data['data-file-raw'] = layout.features.dataFileRaw;
  }
  if (header.cryptMethod !== 0) data['encrypt'] = encryptInfo(meta);
  data['corrupt'] = layout.features.corrupt;
  data['extended-l2'] = layout.features.extendedL2;
  return data;
}

function snapshotInfo(s: SnapshotEntry): JsonObject {
  const out: JsonObject = {};
  if (s.extra.icount !== undefined && s.extra.icount !== -1n) out['icount'] = Number(s.extra.icount);
  out['vm-clock-nsec'] = Number(s.vmClockNsec % 1_000_000_000n);
  out['name'] = s.name;
  out['date-sec'] = s.dateSec;
  out['date-nsec'] = s.dateNsec;
  out['vm-clock-sec'] = Number(s.vmClockNsec / 1_000_000_000n);
  out['id'] = s.id;
  out['vm-state-size'] = Number(s.extra.vmStateSizeLarge ?? BigInt(s.vmStateSize));
  return out;
}

function bitmapInfo(b: ImageMetadata['bitmaps'][number]): JsonObject {
  const flags: string[] = [];
  if (b.flags & BITMAP_FLAG_IN_USE) flags.push('in-use');
  if (b.flags & BITMAP_FLAG_AUTO) flags.push('auto');
  return { flags, name: b.name, granularity: 2 ** b.granularityBits };
}

function encryptInfo(meta: ImageMetadata): JsonObject {
  if (meta.header.cryptMethod === CRYPT_AES) return { format: 'aes' };
  if (meta.header.cryptMethod === CRYPT_LUKS && meta.luks) return luksInfo(meta.luks);
  return { format: meta.header.cryptMethod === CRYPT_LUKS ? 'luks' : 'unknown' };
}

/** QEMU names the cipher by algorithm and key size: xts keys hold two cipher keys. */
function luksInfo(h: LuksHeader): JsonObject {
  const [mode = '', ivgen = ''] = h.cipherMode.split('-', 2);
  const [ivgenAlg = '', ivgenHash] = ivgen.split(':', 2);
  const keyBits = (mode === 'xts' ? h.keyBytes / 2 : h.keyBytes) * 8;
  const out: JsonObject = {};
  out['ivgen-alg'] = ivgenAlg;
  if (ivgenHash !== undefined) out['ivgen-hash-alg'] = ivgenHash;
  out['hash-alg'] = h.hashSpec;
  out['cipher-alg'] = `${h.cipherName}-${keyBits}`;
  out['uuid'] = h.uuid;
  out['format'] = 'luks';
  out['cipher-mode'] = mode;
  out['slots'] = h.slots.map((s) => {
    const active = s.active === LUKS_SLOT_ACTIVE;
    const slot: JsonObject = { active };
    if (active) slot['iters'] = s.iterations;
    slot['key-offset'] = s.keyMaterialOffset * 512;
    if (active) slot['stripes'] = s.stripes;
    return slot;
  });
  out['payload-offset'] = h.payloadOffset * 512;
  out['master-key-iters'] = h.mkDigestIter;
  return out;
}

/** What `qemu-img info --output=json` reports for a raw image: its size rounded up to 512-byte sectors. */
export function rawImageInfo(filename: string, fileSize: number, actualSize: number): JsonObject {
  return { 'virtual-size': Math.ceil(fileSize / 512) * 512, filename, format: 'raw', 'actual-size': actualSize, 'dirty-flag': false };
}

/** QEMU's path_combine: a relative backing name is relative to the image's folder. */
export function fullBackingFilename(imageFilename: string, backing: string): string {
  if (backing.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(backing)) return backing;
  const slash = imageFilename.lastIndexOf('/');
  return slash === -1 ? backing : imageFilename.slice(0, slash + 1) + backing;
}
