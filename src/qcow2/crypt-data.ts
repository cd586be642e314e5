/**
 * Guest data of a LUKS-encrypted image, for both engines: unlocking the image at open, and the
 * en/decryption of data clusters where the engines read and write them at host offsets. QEMU
 * (block/qcow2.c: crypt_physical_offset is true for LUKS; qcow2_co_encrypt/decrypt) numbers each
 * 512-byte sector by its host offset / 512, whatever guest offset it holds. Requests reach the
 * engines sector-aligned on encrypted images (the front aligns them, front.ts), so every host run
 * written here is whole sectors; reads may be unaligned and are widened to whole sectors.
 * Zero clusters and unallocated ranges never get here: they read as plaintext zeros.
 */
import { cipherSpec, LUKS_SECTOR_SIZE, SectorCipher } from '../crypto/luks-cipher.js';
import { unlockLuks } from '../crypto/luks-keys.js';
import { corrupt, unsupported, usage } from '../errors.js';
import type { ImageMetadata } from '../image/metadata.js';
import type { BlockFile } from '../io/block-file.js';
import type { Qcow2State } from './state.js';

/** Unlocks a LUKS image with its passphrase (QEMU's refusal when there is none). */
export async function unlockImage(file: BlockFile, meta: ImageMetadata, keySecret: Uint8Array | undefined): Promise<SectorCipher> {
  if (keySecret === undefined) throw usage("Parameter 'encrypt.key-secret' is required for cipher", { field: 'encrypt.key-secret' });
  const ext = meta.cryptoHeader;
  const luks = meta.luks;
  if (ext === undefined || luks === undefined) throw corrupt('crypt_method is 2 (LUKS) but the image has no LUKS header', { field: 'crypt_method', offset: 32 });
  const base = Number(ext.offset);
  const areaLength = Number(ext.length);
  const unlocked = await unlockLuks(luks, areaLength, keySecret, async (offset, length) => {
    const got = await file.read(base + offset, length);
    if (got.byteLength !== length) throw corrupt(`LUKS key material at ${base + offset} lies past the end of the file`, { offset: base + offset });
    return got;
  });
  return unlocked.cipher;
}

/**
 * The cipher of a legacy AES-CBC image (crypt_method 1), as QEMU's crypto/block-qcow.c makes it:
 * AES-128-CBC, the key the passphrase's first 16 bytes (zero-padded), plain64 IVs from the guest
 * sector number. There is no key check: a wrong passphrase reads as noise (as in QEMU).
 */
export function legacyAesCipher(keySecret: Uint8Array | undefined): SectorCipher {
  if (keySecret === undefined) throw usage("Parameter 'encrypt.key-secret' is required for cipher", { field: 'encrypt.key-secret' });
  const key = new Uint8Array(16);
  const len = Math.min(16, keySecret.indexOf(0) === -1 ? keySecret.byteLength : keySecret.indexOf(0));
  key.set(keySecret.subarray(0, len));
  const cipher = new SectorCipher(cipherSpec('aes', 'cbc-plain64', 16), key, false);
  key.fill(0);
  return cipher;
}

/** Decrypts `into`, which holds the bytes at `hostOffset` (guest `guestOffset`; whole sectors). */
export function decryptSectors(crypto: SectorCipher, hostOffset: number, into: Uint8Array, guestOffset = hostOffset): void {
  crypto.decryptInPlace((crypto.physical ? hostOffset : guestOffset) / LUKS_SECTOR_SIZE, into);
}

/**
 * Reads host bytes [hostOffset, hostOffset + into.byteLength) decrypted into `into`, through
 * `readRaw` (the engine's read of plain host bytes, zeros past the end of the file). The range is
 * widened to whole sectors when it is not one.
 */
export async function readDecrypted(
  crypto: SectorCipher,
  hostOffset: number,
  into: Uint8Array,
  readRaw: (hostOffset: number, into: Uint8Array) => Promise<void>,
  guestOffset: number,
): Promise<void> {
  const S = LUKS_SECTOR_SIZE;
  const start = hostOffset - (hostOffset % S);
  const end = Math.ceil((hostOffset + into.byteLength) / S) * S;
  if (start === hostOffset && end === hostOffset + into.byteLength) {
    await readRaw(hostOffset, into);
    decryptSectors(crypto, hostOffset, into, guestOffset);
    return;
  }
  const wide = new Uint8Array(end - start);
  await readRaw(start, wide);
  decryptSectors(crypto, start, wide, guestOffset - (hostOffset - start));
  into.set(wide.subarray(hostOffset - start, hostOffset - start + into.byteLength));
}

/** The bytes to store at `hostOffset` for guest bytes `bytes` (whole sectors): encrypted when the image is. */
export function storedBytes(crypto: SectorCipher | undefined, hostOffset: number, bytes: Uint8Array): Uint8Array {
  if (crypto === undefined) return bytes;
  if (!crypto.physical) throw unsupported('legacy AES-CBC encrypted images (crypt_method 1) are read-only here');
  if (hostOffset % LUKS_SECTOR_SIZE !== 0 || bytes.byteLength % LUKS_SECTOR_SIZE !== 0) {
    throw corrupt(`an encrypted write at host offset ${hostOffset} of ${bytes.byteLength} bytes is not whole sectors`);
  }
  return crypto.encrypt(hostOffset / LUKS_SECTOR_SIZE, bytes);
}

/**
 * A guest write on an encrypted image made whole sectors (QEMU's block layer does the same: an
 * encrypted qcow2 has a request alignment of 512): the partial first and last sectors are read
 * (decrypted, through the backing chain) and merged. Both engines run this at the start of their
 * writeGuest, under their locks. Unencrypted images are returned as they are.
 */
export async function sectorAligned(st: Qcow2State, offset: number, data: Uint8Array): Promise<{ offset: number; data: Uint8Array }> {
  if (st.crypto === undefined) return { offset, data };
  const S = LUKS_SECTOR_SIZE;
  const end = offset + data.byteLength;
  const start = offset - (offset % S);
  const wideEnd = Math.min(Math.ceil(end / S) * S, st.geometry.virtualSize);
  if (start === offset && wideEnd === end) return { offset, data };
  const buf = new Uint8Array(wideEnd - start);
  if (start < offset) buf.set(await st.store.readGuest(start, Math.min(S, wideEnd - start)), 0);
  if (wideEnd > end) {
    const tail = Math.max(start, wideEnd - S);
    buf.set(await st.store.readGuest(tail, wideEnd - tail), tail - start);
  }
  buf.set(data, offset - start);
  return { offset: start, data: buf };
}
