# QCOW2 compressed cluster descriptor (the low 62 bits of a compressed L2 entry).
# Source: QEMU docs/interop/qcow2.rst ("Compressed Clusters Descriptor").
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
#   Here the split point between offset and sector count depends on cluster_bits, so the
#   descriptor is read raw as desc_hi (bits 32-61) and desc_lo (bits 0-31) and split by
#   instances: x = 62 - (cluster_bits - 8) is between 49 and 61 for cluster_bits 9..21, so the
#   host offset always covers all of desc_lo plus the low (x - 32) bits of desc_hi, and the
#   sector count is desc_hi >> (x - 32). All of this is exact 32-bit arithmetic.
meta:
  id: qcow2_compressed_descriptor
  title: QCOW2 compressed cluster descriptor
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  Parses one big-endian 64-bit word whose bits 0-61 are a compressed cluster descriptor: a
  whole L2 entry of a compressed cluster (bits 62-63 are then the compressed flag and COPIED,
  which is always 0 for compressed clusters), or the bare descriptor with bits 62-63 zero.

  With x = 62 - (cluster_bits - 8):
    Bit  0 - x-1:   Host cluster offset. This is usually _not_ aligned to a cluster or
                    sector boundary! If cluster_bits is small enough that this field includes
                    bits beyond 55, those upper bits must be set to 0.
         x - 61:    Number of additional 512-byte sectors used for the compressed data,
                    beyond the sector containing the offset in the previous field. Some of
                    these sectors may reside in the next contiguous host cluster.

  Note that the compressed data does not necessarily occupy all of the bytes in the final
  sector; rather, decompression stops when it has produced a cluster of data.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: cluster_bits
    type: u1
    doc: cluster_bits from the image header (9..21; other values give meaningless instances).
seq:
  - id: flag_bits
    type: b2
    doc: |
      Bits 62-63 of the word; not part of the descriptor. In an L2 entry, bit 63 is COPIED
      (0 for compressed clusters) and bit 62 the compressed flag (1).
  - id: desc_hi
    type: b30
    doc: Bits 32-61 of the descriptor, raw.
  - id: desc_lo
    type: b32
    doc: Bits 0-31 of the descriptor, raw (always the low 32 bits of the host offset).
instances:
  offset_bits:
    value: 62 - (cluster_bits - 8)
    -ts-type: number
    doc: x = 62 - (cluster_bits - 8), the number of bits of the host offset (49..61).
  nb_sectors:
    value: desc_hi >> (offset_bits - 32)
    -ts-type: number
    doc: |
      Bits x-61: number of additional 512-byte sectors used for the compressed data, beyond
      the sector containing the offset.
  offset_hi:
    value: desc_hi % (1 << (offset_bits - 32))
    -ts-type: number
    doc: Bits 32..x-1 of the host offset (the value of those bits, not shifted).
  offset_lo:
    value: desc_lo
    -ts-type: number
    doc: Bits 0-31 of the host offset.
  offset:
    value: offset_hi * 4294967296 + offset_lo
    -ts-type: number
    doc: |
      Host byte offset of the compressed data as a JS number (exact when offset_hi < 2^21,
      i.e. offset < 2^53; valid images keep it below 2^56, so use offset_hi/offset_lo when
      exactness matters for hostile input).
  sector_offset:
    value: offset_lo % 512
    -ts-type: number
    doc: Position of the compressed data within its first 512-byte sector.
  compressed_size:
    value: (nb_sectors + 1) * 512 - sector_offset
    -ts-type: number
    doc: |
      Number of bytes from offset to the end of the last sector used (nb_sectors + 1 sectors
      in total). The compressed stream may be shorter than this.
