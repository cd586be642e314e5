# LUKS1 partition header stored in the clusters of a LUKS-encrypted QCOW2 image.
# Sources: QEMU docs/interop/qcow2.rst ("Full disk encryption header pointer") and the LUKS1
# On-Disk Format Specification (cryptsetup, docs/on-disk-format.pdf).
#
# 64-bit convention (the same in every spec/*.ksy file):
#   The JavaScript target reads Kaitai's u8 into a JS number (bits above 2^53 are lost), bit fields
#   wider than 32 bits throw at run time, and bit operators in expressions are 32-bit JS operators.
#   So no u8 and no bit field wider than 32 bits is used anywhere:
#   * A plain big-endian 64-bit value X is read as two u4 fields, X_hi (bits 32-63) and X_lo
#     (bits 0-31): X = X_hi * 2^32 + X_lo. The hi/lo pair is the exact value (join it with BigInt).
#     Where a combined number is handy, a value instance X = X_hi * 4294967296 + X_lo is provided;
#     it is a JS number and exact only when X_hi < 2^21 (X < 2^53). Feature bit masks and signed
#     values get no combined instance.
#   * 64-bit table entries are read most significant bit first as bit fields of at most 32 bits
#     (see qcow2_l1_table.ksy); there `offset_lo` is already shifted right by 9.
#   * Expressions use only arithmetic that is exact on JS numbers (`>>` compiles to `>>>`, `/` to
#     Math.floor division, `%` to a non-negative modulo) applied to values below 2^31.
#   This file has no 64-bit fields; the byte-offset instances (a u4 sector count * 512 < 2^41)
#   are exact JS numbers.
meta:
  id: luks1_header
  title: LUKS1 partition header (qcow2 full disk encryption header)
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  When crypt_method is 2 (LUKS), the full disk encryption header pointer extension of a QCOW2
  image gives the offset and length of a cluster-aligned area holding a LUKS1 partition header
  followed by the key material of its key slots. The header is 592 bytes, big-endian; strings
  are ASCII, NUL-padded to their field size:
    0-5      magic "LUKS\xba\xbe"
    6-7      version (1 for LUKS1)
    8-39     cipher_name (e.g. "aes")
    40-71    cipher_mode (e.g. "xts-plain64")
    72-103   hash_spec (e.g. "sha256")
    104-107  payload_offset (512-byte sectors)
    108-111  key_bytes (number of master key bytes)
    112-131  mk_digest (PBKDF2 digest of the master key)
    132-163  mk_digest_salt
    164-167  mk_digest_iter (PBKDF2 iterations for mk_digest)
    168-207  uuid (ASCII UUID)
    208-591  key_slots: 8 key slots of 48 bytes each:
               0-3    active (0x00AC71F3 enabled, 0x0000DEAD disabled)
               4-7    iterations (PBKDF2 iterations for the slot's passphrase)
               8-39   salt (PBKDF2 salt)
               40-43  key_material_offset (512-byte sectors)
               44-47  stripes (anti-forensic splitter stripes)

  In qcow2, payload_offset is calculated as for a standalone LUKS volume (the size of the LUKS
  header plus key material regions plus padding, relative to the start of the LUKS header) and
  is not used to find guest data. key_material_offset is relative to the start of the LUKS
  header clusters, not to the start of the qcow2 file.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
seq:
  - id: magic
    contents: ['LUKS', 0xba, 0xbe]
    doc: Bytes 0-5. LUKS magic ("LUKS\xba\xbe").
  - id: version
    type: u2
    doc: Bytes 6-7. LUKS version (1 for this layout).
  - id: cipher_name
    type: strz
    size: 32
    encoding: ASCII
    doc: Bytes 8-39. Cipher name (e.g. "aes"), NUL-padded.
  - id: cipher_mode
    type: strz
    size: 32
    encoding: ASCII
    doc: Bytes 40-71. Cipher mode (e.g. "xts-plain64"), NUL-padded.
  - id: hash_spec
    type: strz
    size: 32
    encoding: ASCII
    doc: Bytes 72-103. Hash specification for PBKDF2 and the AF splitter (e.g. "sha256"), NUL-padded.
  - id: payload_offset
    type: u4
    doc: Bytes 104-107. Start of the bulk data in 512-byte sectors, relative to the LUKS header.
  - id: key_bytes
    type: u4
    doc: Bytes 108-111. Number of master key bytes.
  - id: mk_digest
    size: 20
    doc: Bytes 112-131. PBKDF2 digest of the master key.
  - id: mk_digest_salt
    size: 32
    doc: Bytes 132-163. Salt of the master key digest.
  - id: mk_digest_iter
    type: u4
    doc: Bytes 164-167. PBKDF2 iteration count of the master key digest.
  - id: uuid
    type: strz
    size: 40
    encoding: ASCII
    doc: Bytes 168-207. UUID of the volume (ASCII), NUL-padded.
  - id: key_slots
    type: key_slot
    repeat: expr
    repeat-expr: 8
    doc: Bytes 208-591. The 8 key slots.
types:
  key_slot:
    doc: One 48-byte key slot.
    seq:
      - id: active
        type: u4
        enum: key_slot_state
        doc: Bytes 0-3. 0x00AC71F3 if the slot is enabled, 0x0000DEAD if it is disabled.
      - id: iterations
        type: u4
        doc: Bytes 4-7. PBKDF2 iteration count for the slot's passphrase.
      - id: salt
        size: 32
        doc: Bytes 8-39. PBKDF2 salt for the slot's passphrase.
      - id: key_material_offset
        type: u4
        doc: |
          Bytes 40-43. Start of the slot's key material in 512-byte sectors, relative to the
          start of the LUKS header.
      - id: stripes
        type: u4
        doc: Bytes 44-47. Number of anti-forensic stripes of the key material.
    instances:
      is_active:
        value: active == key_slot_state::enabled
        -ts-type: boolean
        doc: True when active is 0x00AC71F3 (the slot is enabled).
      key_material_offset_bytes:
        value: key_material_offset * 512
        -ts-type: number
        doc: key_material_offset in bytes, relative to the start of the LUKS header.
instances:
  payload_offset_bytes:
    value: payload_offset * 512
    -ts-type: number
    doc: payload_offset in bytes, relative to the start of the LUKS header.
enums:
  key_slot_state:
    0xdead:
      id: disabled
      doc: LUKS_KEY_DISABLED, the slot holds no key.
    0xac71f3:
      id: enabled
      doc: LUKS_KEY_ENABLED, the slot holds an encrypted copy of the master key.
