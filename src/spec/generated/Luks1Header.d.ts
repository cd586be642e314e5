// Generated from spec/luks1_header.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * When crypt_method is 2 (LUKS), the full disk encryption header pointer extension of a QCOW2
 * image gives the offset and length of a cluster-aligned area holding a LUKS1 partition header
 * followed by the key material of its key slots. The header is 592 bytes, big-endian; strings
 * are ASCII, NUL-padded to their field size:
 *   0-5      magic "LUKS\xba\xbe"
 *   6-7      version (1 for LUKS1)
 *   8-39     cipher_name (e.g. "aes")
 *   40-71    cipher_mode (e.g. "xts-plain64")
 *   72-103   hash_spec (e.g. "sha256")
 *   104-107  payload_offset (512-byte sectors)
 *   108-111  key_bytes (number of master key bytes)
 *   112-131  mk_digest (PBKDF2 digest of the master key)
 *   132-163  mk_digest_salt
 *   164-167  mk_digest_iter (PBKDF2 iterations for mk_digest)
 *   168-207  uuid (ASCII UUID)
 *   208-591  key_slots: 8 key slots of 48 bytes each:
 *              0-3    active (0x00AC71F3 enabled, 0x0000DEAD disabled)
 *              4-7    iterations (PBKDF2 iterations for the slot's passphrase)
 *              8-39   salt (PBKDF2 salt)
 *              40-43  key_material_offset (512-byte sectors)
 *              44-47  stripes (anti-forensic splitter stripes)
 *
 * In qcow2, payload_offset is calculated as for a standalone LUKS volume (the size of the LUKS
 * header plus key material regions plus padding, relative to the start of the LUKS header) and
 * is not used to find guest data. key_material_offset is relative to the start of the LUKS
 * header clusters, not to the start of the qcow2 file.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Luks1Header {
  constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Bytes 0-5. LUKS magic ("LUKS\xba\xbe").
   */
  readonly magic: Uint8Array;
  /**
   * Bytes 6-7. LUKS version (1 for this layout).
   */
  readonly version: number;
  /**
   * Bytes 8-39. Cipher name (e.g. "aes"), NUL-padded.
   */
  readonly cipherName: string;
  /**
   * Bytes 40-71. Cipher mode (e.g. "xts-plain64"), NUL-padded.
   */
  readonly cipherMode: string;
  /**
   * Bytes 72-103. Hash specification for PBKDF2 and the AF splitter (e.g. "sha256"), NUL-padded.
   */
  readonly hashSpec: string;
  /**
   * Bytes 104-107. Start of the bulk data in 512-byte sectors, relative to the LUKS header.
   */
  readonly payloadOffset: number;
  /**
   * Bytes 108-111. Number of master key bytes.
   */
  readonly keyBytes: number;
  /**
   * Bytes 112-131. PBKDF2 digest of the master key.
   */
  readonly mkDigest: Uint8Array;
  /**
   * Bytes 132-163. Salt of the master key digest.
   */
  readonly mkDigestSalt: Uint8Array;
  /**
   * Bytes 164-167. PBKDF2 iteration count of the master key digest.
   */
  readonly mkDigestIter: number;
  /**
   * Bytes 168-207. UUID of the volume (ASCII), NUL-padded.
   */
  readonly uuid: string;
  /**
   * Bytes 208-591. The 8 key slots.
   */
  readonly keySlots: Luks1Header.KeySlot[];
  /**
   * payload_offset in bytes, relative to the start of the LUKS header.
   *
   * (instance, computed lazily on first access)
   */
  readonly payloadOffsetBytes: number;
}
export declare namespace Luks1Header {
  /** Enum key_slot_state: NAME -> value and value -> NAME. */
  export const KeySlotState: {
    /**
     * LUKS_KEY_DISABLED, the slot holds no key.
     */
    readonly DISABLED: 57005;
    /**
     * LUKS_KEY_ENABLED, the slot holds an encrypted copy of the master key.
     */
    readonly ENABLED: 11301363;
    readonly [value: number]: string;
  };
  /**
   * One 48-byte key slot.
   */
  export class KeySlot {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bytes 0-3. 0x00AC71F3 if the slot is enabled, 0x0000DEAD if it is disabled.
     */
    readonly active: number;
    /**
     * Bytes 4-7. PBKDF2 iteration count for the slot's passphrase.
     */
    readonly iterations: number;
    /**
     * Bytes 8-39. PBKDF2 salt for the slot's passphrase.
     */
    readonly salt: Uint8Array;
    /**
     * Bytes 40-43. Start of the slot's key material in 512-byte sectors, relative to the
     * start of the LUKS header.
     */
    readonly keyMaterialOffset: number;
    /**
     * Bytes 44-47. Number of anti-forensic stripes of the key material.
     */
    readonly stripes: number;
    /**
     * True when active is 0x00AC71F3 (the slot is enabled).
     *
     * (instance, computed lazily on first access)
     */
    readonly isActive: boolean;
    /**
     * key_material_offset in bytes, relative to the start of the LUKS header.
     *
     * (instance, computed lazily on first access)
     */
    readonly keyMaterialOffsetBytes: number;
  }
}
