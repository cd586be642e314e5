/**
 * The LUKS1 partition header that a LUKS-encrypted qcow2 image keeps in its own clusters (spec:
 * "Full disk encryption header pointer"; layout from the LUKS1 on-disk format). 592 bytes:
 *
 *     0 magic "LUKS\xba\xbe"      104 payload_offset u32 (sectors)   168 uuid[40]
 *     6 version u16              108 key_bytes u32                  208 8 key slots of 48 bytes:
 *     8 cipher_name[32]          112 mk_digest[20]                        active u32, iterations u32,
 *    40 cipher_mode[32]          132 mk_digest_salt[32]                   salt[32],
 *    72 hash_spec[32]            164 mk_digest_iter u32                   key_material_offset u32
 *                                                                         (sectors), stripes u32
 * We parse it only to describe the image; we never decrypt.
 */
import { corrupt } from '../errors.js';
import { decodeString, encodeString, requireBytes, view } from './bytes.js';

export const LUKS_HEADER_SIZE = 592;
export const LUKS_MAGIC = Uint8Array.of(0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe);
export const LUKS_SLOT_ACTIVE = 0x00ac71f3;
export const LUKS_SLOT_INACTIVE = 0x0000dead;
export const LUKS_SLOTS = 8;

export interface LuksKeySlot {
  active: number;
  iterations: number;
  salt: Uint8Array;
  keyMaterialOffset: number;
  stripes: number;
}

export interface LuksHeader {
  version: number;
  cipherName: string;
  cipherMode: string;
  hashSpec: string;
  payloadOffset: number;
  keyBytes: number;
  mkDigest: Uint8Array;
  mkDigestSalt: Uint8Array;
  mkDigestIter: number;
  uuid: string;
  slots: LuksKeySlot[];
}

function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return decodeString(nul === -1 ? bytes : bytes.subarray(0, nul));
}

export function decodeLuksHeader(bytes: Uint8Array, fileOffset = 0): LuksHeader {
  requireBytes(bytes, 0, LUKS_HEADER_SIZE, 'luks_header', fileOffset);
  if (!LUKS_MAGIC.every((b, i) => bytes[i] === b)) {
    throw corrupt('the encryption header does not start with the LUKS magic', { field: 'luks_header.magic', offset: fileOffset });
  }
  const dv = view(bytes);
  const slots: LuksKeySlot[] = [];
  for (let i = 0; i < LUKS_SLOTS; i++) {
    const at = 208 + i * 48;
    slots.push({
      active: dv.getUint32(at),
      iterations: dv.getUint32(at + 4),
      salt: bytes.slice(at + 8, at + 40),
      keyMaterialOffset: dv.getUint32(at + 40),
      stripes: dv.getUint32(at + 44),
    });
  }
  return {
    version: dv.getUint16(6),
    cipherName: cString(bytes.subarray(8, 40)),
    cipherMode: cString(bytes.subarray(40, 72)),
    hashSpec: cString(bytes.subarray(72, 104)),
    payloadOffset: dv.getUint32(104),
    keyBytes: dv.getUint32(108),
    mkDigest: bytes.slice(112, 132),
    mkDigestSalt: bytes.slice(132, 164),
    mkDigestIter: dv.getUint32(164),
    uuid: cString(bytes.subarray(168, 208)),
    slots,
  };
}

export function encodeLuksHeader(h: LuksHeader): Uint8Array {
  const bytes = new Uint8Array(LUKS_HEADER_SIZE);
  const dv = view(bytes);
  bytes.set(LUKS_MAGIC, 0);
  dv.setUint16(6, h.version);
  bytes.set(encodeString(h.cipherName).subarray(0, 32), 8);
  bytes.set(encodeString(h.cipherMode).subarray(0, 32), 40);
  bytes.set(encodeString(h.hashSpec).subarray(0, 32), 72);
  dv.setUint32(104, h.payloadOffset);
  dv.setUint32(108, h.keyBytes);
  bytes.set(h.mkDigest.subarray(0, 20), 112);
  bytes.set(h.mkDigestSalt.subarray(0, 32), 132);
  dv.setUint32(164, h.mkDigestIter);
  bytes.set(encodeString(h.uuid).subarray(0, 40), 168);
  h.slots.slice(0, LUKS_SLOTS).forEach((s, i) => {
    const at = 208 + i * 48;
    dv.setUint32(at, s.active);
    dv.setUint32(at + 4, s.iterations);
    bytes.set(s.salt.subarray(0, 32), at + 8);
    dv.setUint32(at + 40, s.keyMaterialOffset);
    dv.setUint32(at + 44, s.stripes);
  });
  return bytes;
}
