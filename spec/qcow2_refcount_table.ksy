# QCOW2 refcount table: 64-bit entries pointing to refcount blocks.
# Source: QEMU docs/interop/qcow2.rst ("Host cluster management").
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
  id: qcow2_refcount_table
  title: QCOW2 refcount table
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  The refcount table (refcount_table_clusters clusters at refcount_table_offset) is an array of
  big-endian 64-bit entries, each pointing to one refcount block:
    Bit  0 -  8:    Reserved (set to 0)
         9 - 63:    Bits 9-63 of the offset into the image file at which the refcount block
                    starts. Must be aligned to a cluster boundary. If this is 0, the
                    corresponding refcount block has not yet been allocated. All refcounts
                    managed by this refcount block are 0.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: num_entries
    type: u4
    doc: Number of 8-byte entries to read (refcount_table_clusters * cluster_size / 8).
seq:
  - id: entries
    type: refcount_table_entry
    repeat: expr
    repeat-expr: num_entries
    doc: The refcount table entries.
types:
  refcount_table_entry:
    doc: One 64-bit refcount table entry, read most significant bit first.
    seq:
      - id: offset_hi
        type: b32
        doc: Bits 32-63 of the refcount block offset (not shifted).
      - id: offset_lo
        type: b23
        doc: Bits 9-31 of the refcount block offset, as the value of those bits shifted right by 9.
      - id: reserved
        type: b9
        doc: Bits 0-8. Reserved (set to 0).
    instances:
      offset:
        value: offset_hi * 4294967296 + offset_lo * 512
        -ts-type: number
        doc: |
          Refcount block offset as a JS number (exact when offset_hi < 2^21, i.e. below 2^53;
          use offset_hi/offset_lo for hostile input). 0: block not allocated, all its
          refcounts are 0.
      is_unallocated:
        value: offset_hi == 0 and offset_lo == 0
        -ts-type: boolean
        doc: True when the refcount block offset is 0.
