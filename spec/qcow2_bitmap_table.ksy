# QCOW2 bitmap table: 64-bit entries pointing to bitmap data clusters.
# Source: QEMU docs/interop/qcow2.rst ("Bitmap table").
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
  id: qcow2_bitmap_table
  title: QCOW2 bitmap table
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  A bitmap table (bitmap_table_size entries at bitmap_table_offset) maps the bitmap's data
  in units of one cluster. Each entry is a big-endian 64-bit word:
    Bit       0:    Reserved and must be zero if bits 9 - 55 are non-zero.
                    If bits 9 - 55 are zero:
                      0: Cluster should be read as all zeros.
                      1: Cluster should be read as all ones.
         1 -  8:    Reserved and must be zero.
         9 - 55:    Bits 9 - 55 of the host cluster offset. Must be aligned to a cluster
                    boundary. If the offset is 0, the cluster is unallocated; see bit 0.
        56 - 63:    Reserved and must be zero.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: num_entries
    type: u4
    doc: Number of 8-byte entries to read (bitmap_table_size from the directory entry).
seq:
  - id: entries
    type: bitmap_table_entry
    repeat: expr
    repeat-expr: num_entries
    doc: The bitmap table entries.
types:
  bitmap_table_entry:
    doc: One 64-bit bitmap table entry, read most significant bit first.
    seq:
      - id: reserved_hi
        type: b8
        doc: Bits 56-63. Reserved and must be zero.
      - id: offset_hi
        type: b24
        doc: Bits 32-55 of the host cluster offset (not shifted).
      - id: offset_lo
        type: b23
        doc: Bits 9-31 of the host cluster offset, as the value of those bits shifted right by 9.
      - id: reserved_lo
        type: b8
        doc: Bits 1-8. Reserved and must be zero.
      - id: all_ones
        type: b1
        doc: |
          Bit 0. If the offset is 0: set means the cluster reads as all ones, clear as all
          zeros. Reserved (must be zero) if the offset is non-zero.
    instances:
      offset:
        value: offset_hi * 4294967296 + offset_lo * 512
        -ts-type: number
        doc: Host cluster offset (bits 9-55, exact as a JS number); 0 if unallocated.
      is_unallocated:
        value: offset_hi == 0 and offset_lo == 0
        -ts-type: boolean
        doc: True when the offset is 0 (the cluster reads as all zeros or all ones, see all_ones).
