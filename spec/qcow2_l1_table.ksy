# QCOW2 L1 table: an array of 64-bit L1 entries pointing to L2 tables.
# Source: QEMU docs/interop/qcow2.rst ("Cluster mapping").
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
#   * 64-bit table entries are read most significant bit first as bit fields of at most 32 bits.
#     A host offset in bits 9..N is split into offset_hi (bits 32..N) and offset_lo (bits 9..31,
#     i.e. already shifted right by 9); the value instance offset = offset_hi * 4294967296 +
#     offset_lo * 512 is exact for N <= 55 (a multiple of 512 below 2^56 has at most 47
#     significant bits) and otherwise exact below 2^53.
#   * Expressions use only arithmetic that is exact on JS numbers (`>>` compiles to `>>>`, `/` to
#     Math.floor division, `%` to a non-negative modulo) applied to values below 2^31.
meta:
  id: qcow2_l1_table
  title: QCOW2 L1 table
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  The L1 table (l1_size entries at l1_table_offset for the active image, or at a snapshot's
  l1_table_offset) maps the guest address space in units of one L2 table's coverage. Each
  entry is a big-endian 64-bit word:
    Bit  0 -  8:    Reserved (set to 0)
         9 - 55:    Bits 9-55 of the offset into the image file at which the L2 table
                    starts. Must be aligned to a cluster boundary. If the offset is 0, the
                    L2 table and all clusters described by this L2 table are unallocated.
        56 - 62:    Reserved (set to 0)
             63:    0 for an L2 table that is unused or requires COW, 1 if its refcount is
                    exactly one. This information is only accurate in the active L1 table.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: num_entries
    type: u4
    doc: Number of 8-byte entries to read (l1_size from the header or snapshot).
seq:
  - id: entries
    type: l1_entry
    repeat: expr
    repeat-expr: num_entries
    doc: The L1 entries, in guest address order.
types:
  l1_entry:
    doc: One 64-bit L1 table entry, read most significant bit first.
    seq:
      - id: copied
        type: b1
        doc: Bit 63, COPIED. Set if the L2 table's refcount is exactly one (no COW needed).
      - id: reserved_hi
        type: b7
        doc: Bits 56-62. Reserved (set to 0).
      - id: offset_hi
        type: b24
        doc: Bits 32-55 of the L2 table offset (value of bits 32-55, not shifted).
      - id: offset_lo
        type: b23
        doc: Bits 9-31 of the L2 table offset, as the value of those bits shifted right by 9.
      - id: reserved_lo
        type: b9
        doc: Bits 0-8. Reserved (set to 0).
    instances:
      offset:
        value: offset_hi * 4294967296 + offset_lo * 512
        -ts-type: number
        doc: |
          Offset of the L2 table in the image file (bits 9-55 of the entry, exact as a JS
          number). 0 means the L2 table and all clusters it describes are unallocated.
      is_unallocated:
        value: offset_hi == 0 and offset_lo == 0
        -ts-type: boolean
        doc: True when the L2 table offset is 0.
      has_reserved_bits:
        value: reserved_hi != 0 or reserved_lo != 0
        -ts-type: boolean
        doc: True when any reserved bit (0-8 or 56-62) is set.
