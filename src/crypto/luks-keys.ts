/**
 * All handling of LUKS keys: unlocking a key slot with a passphrase (PBKDF2, key material
 * decryption, the anti-forensic merge, the master-key digest check) as QEMU 7.2's
 * crypto/block-luks.c does, and making a key slot for a new image. Passphrases and keys live in
 * Buffers that are zero-filled once they are no longer needed; nothing here prints or logs them.
 */
import { pbkdf2, randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { corrupt, unsupported, usage } from '../errors.js';
import { encodeLuksHeader, LUKS_SLOT_ACTIVE, LUKS_SLOT_INACTIVE, type LuksHeader } from '../format/luks.js';
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

/** What `-o encrypt.*` asks of a new LUKS image (QEMU's QCryptoBlockCreateOptionsLUKS). */
export interface LuksCreateOptions {
  /** encrypt.cipher-alg: aes-128, aes-192, aes-256 (default). */
  cipherAlg: string;
  /** encrypt.cipher-mode: xts (default), cbc, ecb, ctr. */
  cipherMode: string;
  /** encrypt.ivgen-alg: plain64 (default), plain, essiv. */
  ivgenAlg: string;
  /** encrypt.ivgen-hash-alg (essiv only): sha256 by default. */
  ivgenHashAlg: string;
  /** encrypt.hash-alg: sha256 (default). */
  hashAlg: string;
  /** encrypt.iter-time: milliseconds of PBKDF2 for the key slot (2000 by default). */
  iterTime: number;
}

/** QEMU's minimum iterations (QCRYPTO_BLOCK_LUKS_MIN_SLOT_KEY_ITERS, ..._MIN_MASTER_KEY_ITERS). */
const MIN_ITERS = 1000;

/** PBKDF2 iterations that take `ms` milliseconds here (QEMU: qcrypto_pbkdf2_count_iters, then × iter-time / 1000). */
async function countIterations(hash: string, keyBytes: number, ms: number): Promise<number> {
  const pass = randomBytes(32);
  const salt = randomBytes(32);
  let n = 1 << 12;
  for (;;) {
    const t0 = process.hrtime.bigint();
    (await derive(pass, salt, n, keyBytes, hash)).fill(0);
    const took = Number(process.hrtime.bigint() - t0) / 1e6;
    if (took >= 100 || n >= MAX_LUKS_ITERATIONS) {
      pass.fill(0);
      return Math.max(MIN_ITERS, Math.min(MAX_LUKS_ITERATIONS, Math.floor((n * ms) / Math.max(took, 1e-3))));
    }
    n *= 2;
  }
}

function uuidV4(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** What a new LUKS area is made of, from its options, checked as qcrypto_block_luks_create checks them. */
interface LuksPlan {
  keyBytes: number;
  modeSpec: string;
  spec: CipherSpec;
  hash: string;
  /** Sectors of one key slot's material, from sector `firstSector` on. */
  slotSectors: number;
  firstSector: number;
  /** The area's length in sectors: the payload offset. */
  payloadSectors: number;
}

function planLuksArea(o: LuksCreateOptions): LuksPlan {
  const m = /^aes-(128|192|256)$/.exec(o.cipherAlg);
  if (!m) throw unsupported(`encrypt.cipher-alg '${o.cipherAlg}' is not supported (Node's OpenSSL offers aes-128, aes-192 and aes-256)`);
  const keyBits = Number(m[1]);
  const mode = o.cipherMode;
  if (!['xts', 'cbc', 'ecb', 'ctr'].includes(mode)) throw usage(`Parameter 'cipher-mode' does not accept value '${mode}'`);
  if (!['plain', 'plain64', 'essiv'].includes(o.ivgenAlg)) throw usage(`Parameter 'ivgen-alg' does not accept value '${o.ivgenAlg}'`);
  const keyBytes = (keyBits / 8) * (mode === 'xts' ? 2 : 1);
  const modeSpec = o.ivgenAlg === 'essiv' ? `${mode}-essiv:${o.ivgenHashAlg}` : `${mode}-${o.ivgenAlg}`;
  const spec = cipherSpec('aes', modeSpec, keyBytes); // refuses what Node cannot run (aes-192-xts)
  const hash = luksHash(o.hashAlg, 'encrypt.hash-alg');
  // 0 is taken, as QEMU takes it: the iterations are then QEMU's minimum.
  if (!Number.isSafeInteger(o.iterTime) || o.iterTime < 0) throw usage(`encrypt.iter-time must be a number of milliseconds, not ${o.iterTime}`);
  const splitBytes = keyBytes * LUKS_STRIPES;
  if (splitBytes % LUKS_SECTOR_SIZE !== 0) {
    // QEMU 7.2 aborts here (an assertion in crypto/block.c): we refuse instead.
    throw unsupported(`a ${keyBits}-bit ${mode} key (${keyBytes} bytes × ${LUKS_STRIPES} stripes) is not whole sectors: QEMU 7.2 cannot create or open it`);
  }
  const slotSectors = Math.ceil(splitBytes / 4096) * 8;
  const firstSector = 4096 / LUKS_SECTOR_SIZE;
  return { keyBytes, modeSpec, spec, hash, slotSectors, firstSector, payloadSectors: firstSector + 8 * slotSectors };
}

/**
 * The length of the LUKS area a new image with these options gets (QEMU's
 * qcrypto_block_calculate_payload_offset, which `qemu-img measure` adds): its options checked as
 * createLuksArea checks them, no key made.
 */
export function luksAreaLength(o: LuksCreateOptions): number {
  return planLuksArea(o).payloadSectors * LUKS_SECTOR_SIZE;
}

/**
 * The LUKS area of a new image, as qcrypto_block_luks_create lays it out: the 592-byte header at 0,
 * then eight key-material areas of keyBytes × 4000 bytes each rounded up to 4 KiB, from 4 KiB on;
 * the area's length is the payload offset. Slot 0 holds the master key under `passphrase`; the
 * other slots are disabled. Returns the bytes (the caller writes them to the image).
 */
export async function createLuksArea(o: LuksCreateOptions, passphrase: Uint8Array): Promise<Uint8Array> {
  const { keyBytes, modeSpec, spec, hash, slotSectors, firstSector, payloadSectors } = planLuksArea(o);
  const area = new Uint8Array(payloadSectors * LUKS_SECTOR_SIZE);

  const master = randomBytes(keyBytes);
  try {
    // QEMU: master-key iterations are an eighth of iter-time's worth; the slot gets all of it.
    const mkIter = Math.max(MIN_ITERS, Math.floor((await countIterations(hash, 20, o.iterTime)) / 8));
    const mkDigestSalt = randomBytes(32);
    const mkDigest = await derive(master, mkDigestSalt, mkIter, 20, hash);
    const slotIter = await countIterations(hash, keyBytes, o.iterTime);
    const slotSalt = randomBytes(32);
    const slotKey = await derive(passphrase, slotSalt, slotIter, keyBytes, hash);
    const split = afSplit(master, LUKS_STRIPES, hash);
    const slotCipher = new SectorCipher(spec, slotKey);
    slotKey.fill(0);
    let material: Uint8Array;
    try {
      material = slotCipher.encrypt(0, split);
    } finally {
      slotCipher.destroy();
      split.fill(0);
    }
    area.set(material, firstSector * LUKS_SECTOR_SIZE);
    const header: LuksHeader = {
      version: 1,
      cipherName: 'aes',
      cipherMode: modeSpec,
      hashSpec: o.hashAlg,
      payloadOffset: payloadSectors,
      keyBytes,
      mkDigest,
      mkDigestSalt,
      mkDigestIter: mkIter,
      uuid: uuidV4(),
      slots: Array.from({ length: 8 }, (_, i) => ({
        active: i === 0 ? LUKS_SLOT_ACTIVE : LUKS_SLOT_INACTIVE,
        iterations: i === 0 ? slotIter : 0,
        salt: i === 0 ? slotSalt : new Uint8Array(32),
        keyMaterialOffset: firstSector + i * slotSectors,
        stripes: LUKS_STRIPES,
      })),
    };
    area.set(encodeLuksHeader(header), 0);
    return area;
  } finally {
    master.fill(0);
  }
}
