/**
 * The sector cipher of a LUKS1 header, as QEMU 7.2's crypto layer applies it (crypto/block.c,
 * crypto/ivgen-*.c): data is en/decrypted in 512-byte sectors, each with an IV made from its
 * sector number by the header's IV generator (plain: the low 32 bits little-endian; plain64: 64
 * bits little-endian; essiv: the 64-bit number encrypted in ECB mode with hash(master key) as key).
 * The same code decrypts a key slot's key material (sector numbers from 0 at its start) and a qcow2
 * image's data clusters (sector number = host offset / 512: QEMU's crypt_physical_offset is set for
 * LUKS; block/qcow2.c, qcow2_co_encdec in block/qcow2-threads.c).
 *
 * Only ciphers Node's OpenSSL offers are supported; the others (twofish, serpent, cast5, sm4, des)
 * are refused with an `unsupported` error naming the cipher.
 */
import { createCipheriv, createDecipheriv, createHash, getCiphers, getHashes } from 'node:crypto';
import { corrupt, unsupported } from '../errors.js';

/** QEMU's LUKS sector size (QCRYPTO_BLOCK_LUKS_SECTOR_SIZE). */
export const LUKS_SECTOR_SIZE = 512;

export type CipherMode = 'ecb' | 'cbc' | 'xts' | 'ctr';
export type IvGen = 'none' | 'plain' | 'plain64' | 'essiv';

/** What a LUKS header's cipher_name, cipher_mode and key_bytes mean. */
export interface CipherSpec {
  /** The header's names, e.g. "aes", "xts-plain64". */
  cipherName: string;
  cipherMode: string;
  mode: CipherMode;
  ivgen: IvGen;
  /** The hash of ESSIV (cipher_mode "cbc-essiv:sha256"). */
  ivgenHash: string | undefined;
  keyBytes: number;
  /** OpenSSL's name of the cipher, e.g. "aes-256-xts". */
  openssl: string;
  /** OpenSSL's ECB cipher for ESSIV (key size = the digest size), e.g. "aes-256-ecb". */
  essivOpenssl: string | undefined;
}

const HASHES = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160']);

/** The hash of a LUKS hash_spec (PBKDF2, the AF splitter, ESSIV), if Node has it. */
export function luksHash(name: string, field: string): string {
  const n = name.toLowerCase();
  if (!HASHES.has(n)) throw unsupported(`LUKS hash '${name}' is not supported`, { field });
  const node = n === 'ripemd160' ? 'ripemd160' : n;
  if (!getHashes().includes(node)) throw unsupported(`LUKS hash '${name}' is not available in this Node's OpenSSL`, { field });
  return node;
}

export function digestLength(hash: string): number {
  return createHash(hash).digest().byteLength;
}

/** Parses the header's cipher; refuses what we cannot run. */
export function cipherSpec(cipherName: string, cipherMode: string, keyBytes: number): CipherSpec {
  const name = cipherName.toLowerCase();
  const [modeName = '', ivgenPart] = cipherMode.toLowerCase().split('-', 2);
  if (!['ecb', 'cbc', 'xts', 'ctr'].includes(modeName)) throw unsupported(`LUKS cipher mode '${cipherMode}' is not supported`, { field: 'luks_header.cipher_mode' });
  const mode = modeName as CipherMode;
  let ivgen: IvGen = 'none';
  let ivgenHash: string | undefined;
  if (ivgenPart !== undefined) {
    const [gen = '', hash] = ivgenPart.split(':', 2);
    if (gen !== 'plain' && gen !== 'plain64' && gen !== 'essiv') throw unsupported(`LUKS IV generator '${ivgenPart}' is not supported`, { field: 'luks_header.cipher_mode' });
    ivgen = gen;
    if (gen === 'essiv') {
      if (hash === undefined) throw corrupt(`LUKS cipher mode '${cipherMode}': essiv without a hash`, { field: 'luks_header.cipher_mode' });
      ivgenHash = luksHash(hash, 'luks_header.cipher_mode');
    }
  } else if (mode !== 'ecb') {
    throw unsupported(`LUKS cipher mode '${cipherMode}' has no IV generator`, { field: 'luks_header.cipher_mode' });
  }
  if (name !== 'aes') {
    // QEMU 7.2 also knows twofish, serpent, cast5, sm4 and des: OpenSSL (as Node ships it) has none of them in these modes.
    throw unsupported(`LUKS cipher '${cipherName}-${cipherMode}' is not supported (Node's OpenSSL has no ${cipherName} in this mode)`, {
      field: 'luks_header.cipher_name',
    });
  }
  const perKey = mode === 'xts' ? keyBytes / 2 : keyBytes;
  if (perKey !== 16 && perKey !== 24 && perKey !== 32) {
    throw corrupt(`LUKS key_bytes ${keyBytes} does not fit ${cipherName}-${cipherMode}`, { field: 'luks_header.key_bytes' });
  }
  const openssl = `aes-${perKey * 8}-${mode}`;
  if (!getCiphers().includes(openssl)) throw unsupported(`LUKS cipher '${openssl}' is not supported (not in Node's OpenSSL)`, { field: 'luks_header.cipher_name' });
  let essivOpenssl: string | undefined;
  if (ivgen === 'essiv') {
    // QEMU (qcrypto_block_luks_essiv_cipher): the AES whose key size is the digest size.
    const d = digestLength(ivgenHash as string);
    if (d !== 16 && d !== 24 && d !== 32) throw unsupported(`No AES cipher with key size ${d} available (essiv:${ivgenHash})`, { field: 'luks_header.cipher_mode' });
    essivOpenssl = `aes-${d * 8}-ecb`;
  }
  return { cipherName, cipherMode, mode, ivgen, ivgenHash, keyBytes, openssl, essivOpenssl };
}

/**
 * En/decrypts whole 512-byte sectors (a shorter last piece is done with the next IV, as QEMU's
 * helper does). Holds a copy of the key; `destroy()` zeroes it.
 */
export class SectorCipher {
  private readonly key: Buffer;
  private readonly essivKey: Buffer | undefined;

  constructor(
    readonly spec: CipherSpec,
    key: Uint8Array,
    /**
     * Data sectors are numbered by host offset (LUKS, QEMU's crypt_physical_offset) or by guest
     * offset (the legacy AES-CBC of crypt_method 1).
     */
    readonly physical = true,
  ) {
    this.key = Buffer.from(key);
    if (spec.ivgen === 'essiv') {
      this.essivKey = createHash(spec.ivgenHash as string).update(this.key).digest();
    }
  }

  private iv(sector: number): Buffer | null {
    // ECB takes no IV whatever the generator (QEMU: the IV length of ECB is 0, so none is set).
    if (this.spec.mode === 'ecb') return null;
    const iv = Buffer.alloc(16);
    switch (this.spec.ivgen) {
      case 'none':
        return null;
      case 'plain':
        iv.writeUInt32LE(sector % 2 ** 32, 0);
        return iv;
      case 'plain64':
        iv.writeBigUInt64LE(BigInt(sector), 0);
        return iv;
      case 'essiv': {
        iv.writeBigUInt64LE(BigInt(sector), 0);
        const c = createCipheriv(this.spec.essivOpenssl as string, this.essivKey as Buffer, null).setAutoPadding(false);
        return Buffer.concat([c.update(iv), c.final()]);
      }
    }
  }

  private run(encrypt: boolean, firstSector: number, data: Uint8Array, out: Uint8Array): void {
    if (data.byteLength % 16 !== 0) throw corrupt(`LUKS data of ${data.byteLength} bytes is not a whole number of cipher blocks`);
    try {
      for (let at = 0, sector = firstSector; at < data.byteLength; at += LUKS_SECTOR_SIZE, sector++) {
        const piece = data.subarray(at, Math.min(at + LUKS_SECTOR_SIZE, data.byteLength));
        const iv = this.iv(sector);
        const c = encrypt ? createCipheriv(this.spec.openssl, this.key, iv) : createDecipheriv(this.spec.openssl, this.key, iv);
        c.setAutoPadding(false);
        const done = c.update(piece);
        out.set(done, at);
        c.final();
      }
    } catch (err) {
      throw unsupported(`LUKS ${this.spec.openssl}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Decrypts `data` in place, its first sector numbered `firstSector`. */
  decryptInPlace(firstSector: number, data: Uint8Array): void {
    this.run(false, firstSector, data, data);
  }

  /** The encryption of `data` (left as it is), its first sector numbered `firstSector`. */
  encrypt(firstSector: number, data: Uint8Array): Uint8Array {
    const out = new Uint8Array(data.byteLength);
    this.run(true, firstSector, data, out);
    return out;
  }

  destroy(): void {
    this.key.fill(0);
    this.essivKey?.fill(0);
  }
}
