// Generated from spec/luks1_header.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Luks1Header_, KaitaiStream) {
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
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Luks1Header = (function() {
  Luks1Header.KeySlotState = Object.freeze({
    DISABLED: 57005,
    ENABLED: 11301363,

    57005: "DISABLED",
    11301363: "ENABLED",
  });

  function Luks1Header(_io, _parent, _root) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;

    this._read();
  }
  Luks1Header.prototype._read = function() {
    this.magic = this._io.readBytes(6);
    if (!((KaitaiStream.byteArrayCompare(this.magic, new Uint8Array([76, 85, 75, 83, 186, 190])) == 0))) {
      throw new KaitaiStream.ValidationNotEqualError(new Uint8Array([76, 85, 75, 83, 186, 190]), this.magic, this._io, "/seq/0");
    }
    this.version = this._io.readU2be();
    this.cipherName = KaitaiStream.bytesToStr(KaitaiStream.bytesTerminate(this._io.readBytes(32), 0, false), "ASCII");
    this.cipherMode = KaitaiStream.bytesToStr(KaitaiStream.bytesTerminate(this._io.readBytes(32), 0, false), "ASCII");
    this.hashSpec = KaitaiStream.bytesToStr(KaitaiStream.bytesTerminate(this._io.readBytes(32), 0, false), "ASCII");
    this.payloadOffset = this._io.readU4be();
    this.keyBytes = this._io.readU4be();
    this.mkDigest = this._io.readBytes(20);
    this.mkDigestSalt = this._io.readBytes(32);
    this.mkDigestIter = this._io.readU4be();
    this.uuid = KaitaiStream.bytesToStr(KaitaiStream.bytesTerminate(this._io.readBytes(40), 0, false), "ASCII");
    this.keySlots = [];
    for (var i = 0; i < 8; i++) {
      this.keySlots.push(new KeySlot(this._io, this, this._root));
    }
  }

  /**
   * One 48-byte key slot.
   */

  var KeySlot = Luks1Header.KeySlot = (function() {
    function KeySlot(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    KeySlot.prototype._read = function() {
      this.active = this._io.readU4be();
      this.iterations = this._io.readU4be();
      this.salt = this._io.readBytes(32);
      this.keyMaterialOffset = this._io.readU4be();
      this.stripes = this._io.readU4be();
    }

    /**
     * True when active is 0x00AC71F3 (the slot is enabled).
     */
    Object.defineProperty(KeySlot.prototype, 'isActive', {
      get: function() {
        if (this._m_isActive !== undefined)
          return this._m_isActive;
        this._m_isActive = this.active == Luks1Header.KeySlotState.ENABLED;
        return this._m_isActive;
      }
    });

    /**
     * key_material_offset in bytes, relative to the start of the LUKS header.
     */
    Object.defineProperty(KeySlot.prototype, 'keyMaterialOffsetBytes', {
      get: function() {
        if (this._m_keyMaterialOffsetBytes !== undefined)
          return this._m_keyMaterialOffsetBytes;
        this._m_keyMaterialOffsetBytes = this.keyMaterialOffset * 512;
        return this._m_keyMaterialOffsetBytes;
      }
    });

    /**
     * Bytes 0-3. 0x00AC71F3 if the slot is enabled, 0x0000DEAD if it is disabled.
     */

    /**
     * Bytes 4-7. PBKDF2 iteration count for the slot's passphrase.
     */

    /**
     * Bytes 8-39. PBKDF2 salt for the slot's passphrase.
     */

    /**
     * Bytes 40-43. Start of the slot's key material in 512-byte sectors, relative to the
     * start of the LUKS header.
     */

    /**
     * Bytes 44-47. Number of anti-forensic stripes of the key material.
     */

    return KeySlot;
  })();

  /**
   * payload_offset in bytes, relative to the start of the LUKS header.
   */
  Object.defineProperty(Luks1Header.prototype, 'payloadOffsetBytes', {
    get: function() {
      if (this._m_payloadOffsetBytes !== undefined)
        return this._m_payloadOffsetBytes;
      this._m_payloadOffsetBytes = this.payloadOffset * 512;
      return this._m_payloadOffsetBytes;
    }
  });

  /**
   * Bytes 0-5. LUKS magic ("LUKS\xba\xbe").
   */

  /**
   * Bytes 6-7. LUKS version (1 for this layout).
   */

  /**
   * Bytes 8-39. Cipher name (e.g. "aes"), NUL-padded.
   */

  /**
   * Bytes 40-71. Cipher mode (e.g. "xts-plain64"), NUL-padded.
   */

  /**
   * Bytes 72-103. Hash specification for PBKDF2 and the AF splitter (e.g. "sha256"), NUL-padded.
   */

  /**
   * Bytes 104-107. Start of the bulk data in 512-byte sectors, relative to the LUKS header.
   */

  /**
   * Bytes 108-111. Number of master key bytes.
   */

  /**
   * Bytes 112-131. PBKDF2 digest of the master key.
   */

  /**
   * Bytes 132-163. Salt of the master key digest.
   */

  /**
   * Bytes 164-167. PBKDF2 iteration count of the master key digest.
   */

  /**
   * Bytes 168-207. UUID of the volume (ASCII), NUL-padded.
   */

  /**
   * Bytes 208-591. The 8 key slots.
   */

  return Luks1Header;
})();
Luks1Header_.Luks1Header = Luks1Header;
})(exports_, KaitaiStream);

export const Luks1Header = exports_.Luks1Header;
