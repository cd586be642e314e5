# QCOW2 L2 table: standard 64-bit or extended 128-bit L2 entries.
# Source: QEMU docs/interop/qcow2.rst ("Cluster mapping", "Extended L2 Entries").
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
  id: qcow2_l2_table
  title: QCOW2 L2 table (standard and extended entries)
  ks-version: '0.11'
  endian: be
  bit-endian: be
  imports:
    - qcow2_compressed_descriptor
doc: |
  An L2 table occupies one cluster and maps guest clusters to host clusters. Each entry is
  8 bytes (standard) or 16 bytes (extended L2, incompatible feature bit 4).

  Standard L2 entry (and the first 64 bits of an extended entry):
    Bit  0 -  61:   Cluster descriptor
              62:   0 for standard clusters, 1 for compressed clusters
              63:   0 for clusters that are unused, compressed or require COW;
                    1 for standard clusters whose refcount is exactly one. This information
                    is only accurate in L2 tables that are reachable from the active L1 table.
                    With external data files, all guest clusters have an implicit refcount
                    of 1 (because of the fixed host = guest mapping for guest cluster
                    offsets), so this bit should be 1 for all allocated clusters.

  Standard cluster descriptor:
    Bit       0:    If set to 1, the cluster reads as all zeros. The host cluster offset can
                    be used to describe a preallocation, but it won't be used for reading
                    data from this cluster, nor is data read from the backing file if the
                    cluster is unallocated. With version 2 or with extended L2 entries, this
                    is always 0.
         1 -  8:    Reserved (set to 0)
         9 - 55:    Bits 9-55 of host cluster offset. Must be aligned to a cluster boundary.
                    If the offset is 0 and bit 63 is clear, the cluster is unallocated. The
                    offset may only be 0 with bit 63 set (indicating a host cluster offset of
                    0) when an external data file is used.
        56 - 61:    Reserved (set to 0)

  Compressed cluster descriptor: see qcow2_compressed_descriptor.ksy.

  Extended L2 entries add a second 64-bit word (subcluster bitmaps, 32 subclusters):
    Bit  0 - 31:    Allocation status (one bit per subcluster): 1 allocated, 0 not
                    allocated (read from the backing file, or zeros if none)
        32 - 63:    Subcluster reads as zeros (one bit per subcluster): 1 reads as zeros,
                    0 not. Both bits set for one subcluster is invalid. Compressed clusters
                    have no subclusters: the whole second word is 0.
  Read big-endian, the first u4 of the second word is therefore the zero bitmap and the second
  u4 the allocation bitmap.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: cluster_bits
    type: u1
    doc: cluster_bits from the image header (needed to split compressed descriptors).
  - id: extended_l2
    type: bool
    doc: True if incompatible feature bit 4 (extended L2 entries, 16 bytes each) is set.
  - id: num_entries
    type: u4
    doc: Number of entries to read (cluster size / entry size for a whole table).
seq:
  - id: entries
    type: l2_entry
    size: entry_size
    repeat: expr
    repeat-expr: num_entries
    doc: The L2 entries, in guest address order. Each entry is parsed from its own substream.
instances:
  entry_size:
    value: 'extended_l2 ? 16 : 8'
    -ts-type: number
    doc: Size of one L2 entry in bytes.
types:
  l2_entry:
    doc: One standard (8-byte) or extended (16-byte) L2 entry, read most significant bit first.
    seq:
      - id: copied
        type: b1
        doc: Bit 63, COPIED. 1 for standard clusters whose refcount is exactly one.
      - id: compressed
        type: b1
        doc: Bit 62. 0 for standard clusters, 1 for compressed clusters.
      - id: reserved_hi
        type: b6
        if: not compressed
        doc: Bits 56-61 (standard clusters only). Reserved (set to 0).
      - id: offset_hi
        type: b24
        if: not compressed
        doc: Bits 32-55 of the host cluster offset (standard clusters only; not shifted).
      - id: offset_lo
        type: b23
        if: not compressed
        doc: |
          Bits 9-31 of the host cluster offset (standard clusters only), as the value of those
          bits shifted right by 9.
      - id: reserved_lo
        type: b8
        if: not compressed
        doc: Bits 1-8 (standard clusters only). Reserved (set to 0).
      - id: reads_as_zero
        type: b1
        if: not compressed
        doc: |
          Bit 0 (standard clusters only). If set, the cluster reads as all zeros. Always 0 with
          version 2 or with extended L2 entries.
      - id: desc_hi
        type: b30
        if: compressed
        doc: Bits 32-61 of the compressed cluster descriptor (compressed clusters only), raw.
      - id: desc_lo
        type: b32
        if: compressed
        doc: Bits 0-31 of the compressed cluster descriptor (compressed clusters only), raw.
      - id: zero_bitmap
        type: u4
        if: _root.extended_l2
        doc: |
          Extended L2 only: bits 32-63 of the second word, the subcluster reads-as-zero
          bitmap (bit n of this value is subcluster n).
      - id: alloc_bitmap
        type: u4
        if: _root.extended_l2
        doc: |
          Extended L2 only: bits 0-31 of the second word, the subcluster allocation bitmap
          (bit n of this value is subcluster n).
    instances:
      offset:
        value: offset_hi * 4294967296 + offset_lo * 512
        if: not compressed
        -ts-type: number
        doc: Host cluster offset (bits 9-55, exact as a JS number); standard clusters only.
      is_unallocated:
        value: not compressed and not copied and offset_hi == 0 and offset_lo == 0
        -ts-type: boolean
        doc: |
          True for a standard entry with offset 0 and COPIED clear (unallocated; with an
          external data file an offset of 0 with COPIED set is allocated).
      compressed_descriptor:
        pos: 0
        type: qcow2_compressed_descriptor(_root.cluster_bits)
        if: compressed
        doc: The compressed cluster descriptor split by cluster_bits (compressed clusters only).
