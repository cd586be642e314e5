/**
 * All handling of LUKS keys: unlocking a key slot with a passphrase (PBKDF2, key material
 * decryption, the anti-forensic merge, the master-key digest check) as QEMU 7.2's
 * crypto/block-luks.c does, and making a key slot for a new image. Passphrases and keys live in
 * Buffers that are zero-filled once they are no longer needed; nothing here prints or logs them.
 */
import { pbkdf2, randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { corrupt, usage } from '../errors.js';
import { LUKS_SLOT_ACTIVE, type LuksHeader } from '../format/luks.js';
import { LUKS_STRIPES, MAX_LUKS_ITERATIONS, MAX_LUKS_KEY_BYTES } from '../limits.js';
import { cipherSpec, type CipherSpec, digestLength, LUKS_SECTOR_SIZE, luksHash, SectorCipher } from './luks-cipher.js';

const pbkdf2Async = promisify(pbkdf2);

async function derive(secret: Uint8Array, salt: Uint8Array, iterations: number, length: number, hash: string): Promise<Buffer> {
  try {
    return await pbkdf2Async(secret, salt, iterations, length, hash);
  } catch (err) {
    throw corrupt(`PBKDF2 failed: ${(err as Error).message}`, { cause: err });
  }
}

/** The anti-forensic diffusion (crypto/afsplit.c): each digest-sized piece i becomes hash(be32(i) || piece). */
function diffuse(block: Buffer, hash: string): void {
  const d = digestLength(hash);
  for (let i = 0, at = 0; at < block.byteLength; i++, at += d) {
    const len = Math.min(d, block.byteLength - at);
    const iv = Buffer.alloc(4);
    iv.writeUInt32BE(i, 0);
    const out = createHash(hash).update(iv).update(block.subarray(at, at + len)).digest();
    out.copy(block, at, 0, len);
    out.fill(0);
  }
}

/** AF-merge: `stripes` blocks of `blockLen` bytes into one. */
export function afMerge(split: Uint8Array, blockLen: number, stripes: number, hash: string): Buffer {
  const block = Buffer.alloc(blockLen);
  for (let s = 0; s < stripes; s++) {
    const part = split.subarray(s * blockLen, (s + 1) * blockLen);
    for (let i = 0; i < blockLen; i++) block[i]! ^= part[i]!;
    if (s < stripes - 1) diffuse(block, hash);
  }
  return block;
}

/** AF-split: `key` into `stripes` blocks (random but the last, which makes the merge give `key`). */
export function afSplit(key: Uint8Array, stripes: number, hash: string): Buffer {
  const n = key.byteLength;
  const out = randomBytes(n * stripes);
  const block = Buffer.alloc(n);
  for (let s = 0; s < stripes - 1; s++) {
    const part = out.subarray(s * n, (s + 1) * n);
    for (let i = 0; i < n; i++) block[i]! ^= part[i]!;
    diffuse(block, hash);
  }
  const last = out.subarray((stripes - 1) * n);
  for (let i = 0; i < n; i++) last[i] = block[i]! ^ key[i]!;
  block.fill(0);
  return out;
}

/** Reads `length` bytes at byte offset `offset` of the LUKS header area (key material). */
export type ReadHeaderArea = (offset: number, length: number) => Promise<Uint8Array>;

export interface UnlockedLuks {
  spec: CipherSpec;
  /** The payload cipher; the caller destroys it when the image is closed. */
  cipher: SectorCipher;
}

function checkIterations(n: number, field: string): void {
  if (n < 1 || n > MAX_LUKS_ITERATIONS) {
    throw corrupt(`LUKS ${field} is ${n} PBKDF2 iterations; we run between 1 and ${MAX_LUKS_ITERATIONS}`, { field: `luks_header.${field}` });
  }
}

/**
 * The checks QEMU makes of a header before it tries a slot (qcrypto_block_luks_check_header), plus
 * our bounds on work. `areaLength`: bytes of the header area the image reserves for it.
 */
export function checkLuksHeader(h: LuksHeader, areaLength: number): CipherSpec {
  if (h.version !== 1) throw corrupt(`LUKS version ${h.version} is not supported`, { field: 'luks_header.version' });
  if (h.keyBytes < 16 || h.keyBytes > MAX_LUKS_KEY_BYTES) {
    throw corrupt(`LUKS key_bytes ${h.keyBytes}: expected 16 to ${MAX_LUKS_KEY_BYTES}`, { field: 'luks_header.key_bytes' });
  }
  const spec = cipherSpec(h.cipherName, h.cipherMode, h.keyBytes);
  luksHash(h.hashSpec, 'luks_header.hash_spec');
  checkIterations(h.mkDigestIter, 'mk_digest_iter');
  h.slots.forEach((s, i) => {
    if (s.active !== LUKS_SLOT_ACTIVE && s.active !== 0x0000dead) throw corrupt(`Keyslot ${i} state (active/disable) is corrupted`, { field: 'luks_header.key_slot.active' });
    if (s.active !== LUKS_SLOT_ACTIVE) return;
    if (s.stripes !== LUKS_STRIPES) throw corrupt(`Keyslot ${i} is corrupted (stripes ${s.stripes} != ${LUKS_STRIPES})`, { field: 'luks_header.key_slot.stripes' });
    checkIterations(s.iterations, `key_slot[${i}].iterations`);
    const start = s.keyMaterialOffset * LUKS_SECTOR_SIZE;
    const end = start + h.keyBytes * s.stripes;
    if (s.keyMaterialOffset === 0 || end > areaLength) {
      throw corrupt(`Keyslot ${i}: key material at sector ${s.keyMaterialOffset} (${h.keyBytes * s.stripes} bytes) lies outside the LUKS header area of ${areaLength} bytes`, {
        field: 'luks_header.key_slot.key_material_offset',
      });
    }
  });
  return spec;
}

/**
 * Tries every active slot with `passphrase` (as QEMU does, in order), then checks the master key
 * against mk_digest. Wrong passphrase: QEMU's "Invalid password, cannot unlock any keyslot".
 */
export async function unlockLuks(h: LuksHeader, areaLength: number, passphrase: Uint8Array, read: ReadHeaderArea): Promise<UnlockedLuks> {
  const spec = checkLuksHeader(h, areaLength);
  const hash = luksHash(h.hashSpec, 'luks_header.hash_spec');
  for (const slot of h.slots) {
    if (slot.active !== LUKS_SLOT_ACTIVE) continue;
    const slotKey = await derive(passphrase, slot.salt, slot.iterations, h.keyBytes, hash);
    const material = Buffer.from(await read(slot.keyMaterialOffset * LUKS_SECTOR_SIZE, h.keyBytes * slot.stripes));
    const slotCipher = new SectorCipher(spec, slotKey);
    slotKey.fill(0);
    try {
      slotCipher.decryptInPlace(0, material);
    } finally {
      slotCipher.destroy();
    }
    const master = afMerge(material, h.keyBytes, slot.stripes, hash);
    material.fill(0);
    const digest = await derive(master, h.mkDigestSalt, h.mkDigestIter, 20, hash);
    if (digest.byteLength === h.mkDigest.byteLength && timingSafeEqual(digest, h.mkDigest)) {
      const cipher = new SectorCipher(spec, master);
      master.fill(0);
      return { spec, cipher };
    }
    master.fill(0);
  }
  throw usage('Invalid password, cannot unlock any keyslot', { field: 'encrypt.key-secret' });
}
