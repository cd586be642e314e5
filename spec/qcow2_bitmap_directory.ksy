# QCOW2 bitmap directory (persistent dirty bitmaps).
# Source: QEMU docs/interop/qcow2.rst ("Bitmaps", "Bitmap directory").
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
  id: qcow2_bitmap_directory
  title: QCOW2 bitmap directory
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  The bitmap directory (bitmap_directory_size bytes at bitmap_directory_offset, both from the
  bitmaps header extension) is a list of nb_bitmaps variable-length entries, each aligned to 8
  bytes:
    Byte 0 -  7:    bitmap_table_offset: offset into the image file at which the bitmap table
                    for the bitmap starts. Must be aligned to a cluster boundary.
         8 - 11:    bitmap_table_size: number of entries in the bitmap table.
        12 - 15:    flags
                    Bit 0: in_use. The bitmap was not saved correctly and may be inconsistent.
                    1: auto. The bitmap must reflect all changes of the virtual disk by any
                       application that would write to this qcow2 file (including writes,
                       snapshot switching, etc.).
                    2: extra_data_compatible. The extra data may be ignored if it is not
                       understood (otherwise the bitmap cannot be used).
                    Bits 3 - 31 are reserved and must be 0.
             16:    type: 1 is the only defined value (dirty tracking bitmap).
             17:    granularity_bits: granularity = 1 << granularity_bits (9..31).
        18 - 19:    name_size (at most 1023).
        20 - 23:    extra_data_size (must be 0 in the current version).
        variable:   extra_data
        variable:   name (UTF-8, not NUL-terminated)
        variable:   Padding to round up the entry size to the next multiple of 8.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: nb_bitmaps
    type: u4
    doc: Number of directory entries to read (nb_bitmaps from the bitmaps extension).
seq:
  - id: entries
    type: bitmap_directory_entry
    repeat: expr
    repeat-expr: nb_bitmaps
    doc: The bitmap directory entries.
types:
  bitmap_directory_entry:
    doc: One bitmap directory entry (24 fixed bytes, extra data, name, padding to 8).
    seq:
      - id: bitmap_table_offset_hi
        type: u4
        doc: Bytes 0-3. Bits 32-63 of bitmap_table_offset.
      - id: bitmap_table_offset_lo
        type: u4
        doc: Bytes 4-7. Bits 0-31 of bitmap_table_offset.
      - id: bitmap_table_size
        type: u4
        doc: Bytes 8-11. Number of entries in the bitmap table of the bitmap.
      - id: flags
        type: u4
        doc: |
          Bytes 12-15. Bit 0 in_use, bit 1 auto, bit 2 extra_data_compatible, bits 3-31
          reserved (must be 0).
      - id: type
        type: u1
        enum: bitmap_type
        doc: Byte 16. Bitmap type; 1 (dirty tracking bitmap) is the only defined value.
      - id: granularity_bits
        type: u1
        doc: Byte 17. Granularity bits (granularity = 1 << granularity_bits, 9..31).
      - id: name_size
        type: u2
        doc: Bytes 18-19. Size of the bitmap name (at most 1023).
      - id: extra_data_size
        type: u4
        doc: Bytes 20-23. Size of type-specific extra data (must be 0 in the current version).
      - id: extra_data
        size: extra_data_size
        doc: Type-specific extra data, kept verbatim.
      - id: name
        type: str
        size: name_size
        encoding: UTF-8
        doc: The name of the bitmap (UTF-8, not NUL-terminated).
      - id: padding
        size: (-(24 + extra_data_size + name_size)) % 8
        doc: Padding to round the entry size up to a multiple of 8 (counted from the entry start).
    instances:
      bitmap_table_offset:
        value: bitmap_table_offset_hi * 4294967296 + bitmap_table_offset_lo
        -ts-type: number
        doc: bitmap_table_offset as a JS number (exact when the hi half is < 2^21).
      in_use:
        value: (flags & 1) != 0
        -ts-type: boolean
        doc: Flags bit 0, in_use.
      auto:
        value: (flags & 2) != 0
        -ts-type: boolean
        doc: Flags bit 1, auto.
      extra_data_compatible:
        value: (flags & 4) != 0
        -ts-type: boolean
        doc: Flags bit 2, extra_data_compatible.
      has_reserved_flags:
        value: (flags >> 3) != 0
        -ts-type: boolean
        doc: True when any reserved flag bit (3-31) is set.
      entry_size:
        value: 24 + extra_data_size + name_size + padding.size
        -ts-type: number
        doc: Total size of this entry in bytes, including padding (a multiple of 8).
enums:
  bitmap_type:
    1:
      id: dirty_tracking
      doc: Dirty tracking bitmap.
