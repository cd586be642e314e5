/**
 * All handling of LUKS keys: unlocking a key slot with a passphrase (PBKDF2, key material
 * decryption, the anti-forensic merge, the master-key digest check) as QEMU 7.2's
 * crypto/block-luks.c does, making a key slot (one function for a new image and for amend), and
 * amend's adding and erasing of key slots. Passphrases and keys live in
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
 * The master key from key slot `index` under `passphrase` (QEMU's qcrypto_block_luks_load_key):
 * undefined when the slot is inactive or the passphrase does not open it. The caller zero-fills it.
 */
async function loadKeySlot(h: LuksHeader, index: number, spec: CipherSpec, hash: string, passphrase: Uint8Array, read: ReadHeaderArea): Promise<Buffer | undefined> {
  const slot = h.slots[index]!;
  if (slot.active !== LUKS_SLOT_ACTIVE) return undefined;
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
  if (digest.byteLength === h.mkDigest.byteLength && timingSafeEqual(digest, h.mkDigest)) return master;
  master.fill(0);
  return undefined;
}

/** The master key under `passphrase`, every active slot tried in order (qcrypto_block_luks_find_key). */
async function findMasterKey(h: LuksHeader, spec: CipherSpec, hash: string, passphrase: Uint8Array, read: ReadHeaderArea): Promise<Buffer> {
  for (let i = 0; i < h.slots.length; i++) {
    const master = await loadKeySlot(h, i, spec, hash, passphrase, read);
    if (master !== undefined) return master;
  }
  throw usage('Invalid password, cannot unlock any keyslot', { field: 'encrypt.key-secret' });
}

/**
 * Tries every active slot with `passphrase` (as QEMU does, in order), then checks the master key
 * against mk_digest. Wrong passphrase: QEMU's "Invalid password, cannot unlock any keyslot".
 */
export async function unlockLuks(h: LuksHeader, areaLength: number, passphrase: Uint8Array, read: ReadHeaderArea): Promise<UnlockedLuks> {
  const spec = checkLuksHeader(h, areaLength);
  const hash = luksHash(h.hashSpec, 'luks_header.hash_spec');
  const master = await findMasterKey(h, spec, hash, passphrase, read);
  try {
    return { spec, cipher: new SectorCipher(spec, master) };
  } finally {
    master.fill(0);
  }
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
 * A key slot holding `master` under `passphrase` (QEMU's qcrypto_block_luks_store_key, without the
 * writes): a new salt, PBKDF2 iterations worth `iterTime` ms here (QEMU's minimum at least), the
 * anti-forensic split into 4000 stripes, encrypted with the passphrase's key. Create and amend both
 * make their slots here.
 */
async function makeKeySlot(spec: CipherSpec, hash: string, master: Uint8Array, passphrase: Uint8Array, iterTime: number): Promise<{ iterations: number; salt: Uint8Array; material: Uint8Array }> {
  const keyBytes = master.byteLength;
  const iterations = await countIterations(hash, keyBytes, iterTime);
  const salt = randomBytes(32);
  const slotKey = await derive(passphrase, salt, iterations, keyBytes, hash);
  const split = afSplit(master, LUKS_STRIPES, hash);
  const slotCipher = new SectorCipher(spec, slotKey);
  slotKey.fill(0);
  try {
    return { iterations, salt, material: slotCipher.encrypt(0, split) };
  } finally {
    slotCipher.destroy();
    split.fill(0);
  }
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
    const { iterations: slotIter, salt: slotSalt, material } = await makeKeySlot(spec, hash, master, passphrase, o.iterTime);
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

/** What `qemu-img amend -o encrypt.*` asks of a LUKS image's key slots (QEMU's QCryptoBlockAmendOptionsLUKS). */
export interface LuksAmendOptions {
  state: 'active' | 'inactive';
  keyslot?: number;
  /** Secret ids (--object secret,id=…). */
  newSecret?: string;
  oldSecret?: string;
  /** Milliseconds of PBKDF2 for a new slot (2000 by default, as QEMU). */
  iterTime?: number;
}

/** The LUKS area of an open image: its bytes (offsets from the area's start), and a flush of the file. */
export interface LuksAreaIo {
  read: ReadHeaderArea;
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

/** Where amend finds passphrases: the image's own (encrypt.key-secret), and any secret by id (QEMU's messages when missing). */
export interface LuksSecrets {
  keySecret(): Uint8Array;
  secret(id: string): Uint8Array;
}

/** QEMU's QCRYPTO_BLOCK_LUKS_ERASE_ITERATIONS: passes of random bytes over an erased slot's material. */
const ERASE_PASSES = 40;
const DEFAULT_ITER_TIME_MS = 2000;

/** An inactive slot is not checked at open: before amend writes its material, it must be a whole slot inside the area. */
function checkSlotPlace(h: LuksHeader, i: number, areaLength: number): void {
  const s = h.slots[i]!;
  const end = s.keyMaterialOffset * LUKS_SECTOR_SIZE + h.keyBytes * s.stripes;
  if (s.stripes !== LUKS_STRIPES || s.keyMaterialOffset === 0 || end > areaLength) {
    throw corrupt(`Keyslot ${i}: ${s.stripes} stripes at sector ${s.keyMaterialOffset} do not fit the LUKS header area of ${areaLength} bytes`, {
      field: 'luks_header.key_slot.key_material_offset',
    });
  }
}

/**
 * Adds or erases key slots as QEMU 7.2's qcrypto_block_luks_amend_options does: its checks in its
 * order, with its messages. `h` is changed in place. Crash safety: a new slot's material is written
 * and flushed before the header that makes it active; an erased slot's header is written and
 * flushed before its material is overwritten; so the image opens with the old secret throughout.
 */
export async function amendLuksKeySlots(h: LuksHeader, areaLength: number, o: LuksAmendOptions, secrets: LuksSecrets, io: LuksAreaIo, force: boolean): Promise<void> {
  const spec = checkLuksHeader(h, areaLength);
  const hash = luksHash(h.hashSpec, 'luks_header.hash_spec');
  const isActive = (i: number) => h.slots[i]!.active === LUKS_SLOT_ACTIVE;
  const activeCount = () => h.slots.filter((s) => s.active === LUKS_SLOT_ACTIVE).length;
  const writeHeader = async () => {
    await io.write(0, encodeLuksHeader(h));
    await io.flush();
  };
  if (o.state === 'active') {
    if (o.newSecret === undefined) throw usage("'new-secret' is required to activate a keyslot");
    if (o.oldSecret !== undefined) throw usage("'old-secret' must not be given when activating keyslots");
    let keyslot: number;
    if (o.keyslot !== undefined) {
      keyslot = o.keyslot;
      if (keyslot < 0 || keyslot >= h.slots.length) throw usage(`Invalid keyslot ${keyslot >>> 0} specified, must be between 0 and ${h.slots.length - 1}`);
    } else {
      keyslot = h.slots.findIndex((s) => s.active !== LUKS_SLOT_ACTIVE);
      if (keyslot === -1) throw usage("Can't add a keyslot - all keyslots are in use");
    }
    if (!force && isActive(keyslot)) throw usage(`Refusing to overwrite active keyslot ${keyslot} - please erase it first`);
    const oldPassword = secrets.keySecret();
    let master: Buffer;
    try {
      master = await findMasterKey(h, spec, hash, oldPassword, io.read);
    } finally {
      oldPassword.fill(0);
    }
    try {
      const newPassword = secrets.secret(o.newSecret);
      let made;
      try {
        made = await makeKeySlot(spec, hash, master, newPassword, o.iterTime ?? DEFAULT_ITER_TIME_MS);
      } finally {
        newPassword.fill(0);
      }
      const slot = h.slots[keyslot]!;
      checkSlotPlace(h, keyslot, areaLength);
      // The material first, flushed: the slot is not active until the header below says so.
      await io.write(slot.keyMaterialOffset * LUKS_SECTOR_SIZE, made.material);
      await io.flush();
      slot.salt = made.salt;
      slot.iterations = made.iterations;
      slot.active = LUKS_SLOT_ACTIVE;
      await writeHeader();
    } finally {
      master.fill(0);
    }
    return;
  }

  if (o.newSecret !== undefined) throw usage("'new-secret' must not be given when erasing keyslots");
  if (o.iterTime !== undefined) throw usage("'iter-time' must not be given when erasing keyslots");
  const oldPassword = o.oldSecret === undefined ? undefined : secrets.secret(o.oldSecret);
  try {
    /** Does `oldPassword` open slot i? */
    const opens = async (i: number, password: Uint8Array) => {
      const master = await loadKeySlot(h, i, spec, hash, password, io.read);
      master?.fill(0);
      return master !== undefined;
    };
    let toErase: number[];
    if (o.keyslot !== undefined) {
      const keyslot = o.keyslot;
      if (keyslot < 0 || keyslot >= h.slots.length) throw usage(`Invalid keyslot ${keyslot} specified, must be between 0 and ${h.slots.length - 1}`);
      if (oldPassword !== undefined && !(await opens(keyslot, oldPassword))) {
        throw usage(`Given keyslot ${keyslot} doesn't contain the given old password for erase operation`);
      }
      if (!force && !isActive(keyslot)) throw usage(`Given keyslot ${keyslot} is already erased (inactive) `);
      if (!force && activeCount() === 1) {
        throw usage(`Attempt to erase the only active keyslot ${keyslot} which will erase all the data in the image irreversibly - refusing operation`);
      }
      toErase = [keyslot];
    } else if (oldPassword !== undefined) {
      toErase = [];
      for (let i = 0; i < h.slots.length; i++) if (await opens(i, oldPassword)) toErase.push(i);
      if (toErase.length === 0) throw usage('No keyslots match given (old) password for erase operation');
      if (!force && toErase.length === activeCount()) {
        throw usage('All the active keyslots match the (old) password that was given and erasing them will erase all the data in the image irreversibly - refusing operation');
      }
    } else {
      throw usage('To erase keyslot(s), either explicit keyslot index or the password currently contained in them must be given');
    }
    for (const i of toErase) {
      const slot = h.slots[i]!;
      checkSlotPlace(h, i, areaLength);
      // The header first, flushed: then the material is overwritten (QEMU: 40 passes of random bytes).
      slot.salt = new Uint8Array(32);
      slot.iterations = 0;
      slot.active = LUKS_SLOT_INACTIVE;
      await writeHeader();
      const length = h.keyBytes * slot.stripes;
      for (let pass = 0; pass < ERASE_PASSES; pass++) await io.write(slot.keyMaterialOffset * LUKS_SECTOR_SIZE, randomBytes(length));
      await io.flush();
    }
  } finally {
    oldPassword?.fill(0);
  }
}
