# QCOW2 refcount block: refcount_bits-wide reference counts, refcount_bits = 1 << refcount_order.
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
#   64-bit refcounts (order 6) are read as value_hi/value_lo u4 halves.
meta:
  id: qcow2_refcount_block
  title: QCOW2 refcount block
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  A refcount block occupies one cluster and holds cluster_size * 8 / refcount_bits entries,
  refcount_bits = 1 << refcount_order (order 0..6, i.e. 1 to 64 bits; version 2 images always
  use order 4). Entry n is the reference count of host cluster
  (refcount table index * entries per block + n).

  Entries narrower than a byte (orders 0-2: 1, 2 and 4 bits) are packed starting at the least
  significant bit of each byte: entry n lives in byte n * refcount_bits / 8 at bit position
  (n * refcount_bits) % 8. Entries of 8, 16, 32 and 64 bits are big-endian integers.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: refcount_order
    type: u1
    doc: refcount_order from the header (0..6).
  - id: num_entries
    type: u4
    doc: Number of entries to read (cluster_size * 8 / refcount_bits for a whole block).
seq:
  - id: entries
    type: refcount_entry
    repeat: expr
    repeat-expr: num_entries
    doc: The reference counts, in host cluster order.
instances:
  refcount_bits:
    value: 1 << refcount_order
    -ts-type: number
    doc: Width of one entry in bits.
types:
  refcount_entry:
    doc: |
      One reference count. Exactly one group of the fields below is present, depending on
      refcount_order; value combines them.

      The byte-aligned fields come first on purpose: the compiler emits an unconditional
      alignToByte() before the first byte-aligned field that follows a bit field (even when
      both are conditional), which would drop the remaining bits of a byte shared by several
      sub-byte entries. With this order nothing realigns the stream between entries.
    seq:
      - id: value_u1
        type: u1
        if: _root.refcount_order == 3
        doc: Order 3 (8-bit refcounts).
      - id: value_u2
        type: u2
        if: _root.refcount_order == 4
        doc: Order 4 (16-bit refcounts, big-endian; the only order in version 2).
      - id: value_u4
        type: u4
        if: _root.refcount_order == 5
        doc: Order 5 (32-bit refcounts, big-endian).
      - id: value_hi
        type: u4
        if: _root.refcount_order == 6
        doc: Order 6 (64-bit refcounts, big-endian), bits 32-63.
      - id: value_lo
        type: u4
        if: _root.refcount_order == 6
        doc: Order 6 (64-bit refcounts, big-endian), bits 0-31.
      - id: value_b1
        type: b1le
        if: _root.refcount_order == 0
        doc: Order 0 (1-bit refcounts), packed LSB first.
      - id: value_b2
        type: b2le
        if: _root.refcount_order == 1
        doc: Order 1 (2-bit refcounts), packed LSB first.
      - id: value_b4
        type: b4le
        if: _root.refcount_order == 2
        doc: Order 2 (4-bit refcounts), packed LSB first.
    instances:
      value:
        value: >-
          _root.refcount_order == 0 ? (value_b1 ? 1 : 0)
          : _root.refcount_order == 1 ? value_b2
          : _root.refcount_order == 2 ? value_b4
          : _root.refcount_order == 3 ? value_u1
          : _root.refcount_order == 4 ? value_u2
          : _root.refcount_order == 5 ? value_u4
          : value_hi * 4294967296 + value_lo
        -ts-type: number
        doc: |
          The reference count as a JS number. Exact for orders 0-5; for order 6 exact only
          when value_hi < 2^21 (use value_hi/value_lo otherwise).
