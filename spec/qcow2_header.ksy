# QCOW2 image header (versions 2 and 3), header extensions and backing file name.
# Source: QEMU docs/interop/qcow2.rst ("Header", "Header extensions").
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
meta:
  id: qcow2_header
  title: QCOW2 image header (v2/v3) with header extensions
  file-extension: qcow2
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  The first cluster of a QCOW2 image starts with this header. All numbers are big-endian.

  Version 2 headers are 72 bytes long. Version 3 adds the feature bit masks, refcount_order and
  header_length (bytes 72-103); header_length is at least 104 and a multiple of 8. The
  compression_type byte (offset 104) only exists when header_length > 104; bytes 105 up to
  header_length - 1 are padding or fields added by later versions of the specification and are
  kept verbatim in unknown_header_fields.

  Header extensions follow directly after the header (at header_length for v3, at 72 for v2):
  each is {u4 type, u4 length, data[length], padding to a multiple of 8} and the list ends with
  the end-of-area extension (type 0). Like QEMU, parsing stops at the backing file name offset
  (when set) or at the end of the first cluster, whichever is smaller, and never reads past the
  end of the supplied bytes. Unknown extension types are kept as raw bytes.

  Byte layout of the fixed part:
    0-3    magic "QFI\xfb"
    4-7    version (2 or 3)
    8-15   backing_file_offset (0: no backing file)
    16-19  backing_file_size (backing file name length, not NUL-terminated, at most 1023)
    20-23  cluster_bits (9..21 in QEMU; cluster size = 1 << cluster_bits)
    24-31  size (virtual disk size in bytes)
    32-35  crypt_method (0 none, 1 AES, 2 LUKS)
    36-39  l1_size (number of L1 entries)
    40-47  l1_table_offset
    48-55  refcount_table_offset
    56-59  refcount_table_clusters
    60-63  nb_snapshots
    64-71  snapshots_offset
    -- version 3 only --
    72-79  incompatible_features (bit 0 dirty, 1 corrupt, 2 external data file,
           3 compression type, 4 extended L2; other bits unknown: refuse to open)
    80-87  compatible_features (bit 0 lazy refcounts)
    88-95  autoclear_features (bit 0 bitmaps extension, 1 raw external data)
    96-99  refcount_order (refcount_bits = 1 << refcount_order, order 0..6; v2 is always 4)
    100-103 header_length
    104    compression_type (only if header_length > 104; 0 zlib/raw deflate, 1 zstd)
    105..header_length-1  padding / unknown future header fields
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
seq:
  - id: magic
    contents: [0x51, 0x46, 0x49, 0xfb]
    doc: Bytes 0-3. QCOW magic string ("QFI\xfb").
  - id: version
    type: u4
    valid:
      any-of: [2, 3]
    doc: Bytes 4-7. Version number (valid values are 2 and 3).
  - id: backing_file_offset_hi
    type: u4
    doc: Bytes 8-11. Bits 32-63 of backing_file_offset.
  - id: backing_file_offset_lo
    type: u4
    doc: |
      Bytes 12-15. Bits 0-31 of backing_file_offset: offset into the image file at which the
      backing file name is stored (not NUL-terminated). 0 if the image has no backing file.
      Must not be part of the first cluster's header extension area.
  - id: backing_file_size
    type: u4
    doc: |
      Bytes 16-19. Length of the backing file name in bytes (at most 1023). Undefined if the
      image does not have a backing file.
  - id: cluster_bits
    type: u4
    doc: |
      Bytes 20-23. Number of bits used for addressing an offset within a cluster
      (1 << cluster_bits is the cluster size). Must be >= 9 (512 byte clusters); QEMU
      limits it to 21 (2 MiB clusters).
  - id: size_hi
    type: u4
    doc: Bytes 24-27. Bits 32-63 of size.
  - id: size_lo
    type: u4
    doc: Bytes 28-31. Bits 0-31 of size, the virtual disk size in bytes.
  - id: crypt_method
    type: u4
    enum: crypt_method
    doc: Bytes 32-35. 0 for no encryption, 1 for AES encryption, 2 for LUKS encryption.
  - id: l1_size
    type: u4
    doc: Bytes 36-39. Number of entries in the active L1 table.
  - id: l1_table_offset_hi
    type: u4
    doc: Bytes 40-43. Bits 32-63 of l1_table_offset.
  - id: l1_table_offset_lo
    type: u4
    doc: |
      Bytes 44-47. Bits 0-31 of l1_table_offset: offset into the image file at which the active
      L1 table starts. Must be aligned to a cluster boundary.
  - id: refcount_table_offset_hi
    type: u4
    doc: Bytes 48-51. Bits 32-63 of refcount_table_offset.
  - id: refcount_table_offset_lo
    type: u4
    doc: |
      Bytes 52-55. Bits 0-31 of refcount_table_offset: offset into the image file at which the
      refcount table starts. Must be aligned to a cluster boundary.
  - id: refcount_table_clusters
    type: u4
    doc: Bytes 56-59. Number of clusters that the refcount table occupies.
  - id: nb_snapshots
    type: u4
    doc: Bytes 60-63. Number of snapshots contained in the image.
  - id: snapshots_offset_hi
    type: u4
    doc: Bytes 64-67. Bits 32-63 of snapshots_offset.
  - id: snapshots_offset_lo
    type: u4
    doc: |
      Bytes 68-71. Bits 0-31 of snapshots_offset: offset into the image file at which the
      snapshot table starts. Must be aligned to a cluster boundary.
  - id: incompatible_features_hi
    type: u4
    if: version >= 3
    doc: Bytes 72-75 (v3 only). Bits 32-63 of the incompatible feature bit mask (all unknown).
  - id: incompatible_features_lo
    type: u4
    if: version >= 3
    doc: |
      Bytes 76-79 (v3 only). Bits 0-31 of the incompatible feature bit mask. An image with an
      unknown bit set must not be opened.
        Bit 0: Dirty bit (refcounts may be inconsistent; only valid with lazy refcounts).
        Bit 1: Corrupt bit (metadata corrupted; open read-only only).
        Bit 2: External data file bit (guest data lives in an external data file).
        Bit 3: Compression type bit (compression_type field is valid and non-zero).
        Bit 4: Extended L2 entries (128-bit L2 entries with 32 subclusters).
        Bits 5-63: Reserved (set to 0).
  - id: compatible_features_hi
    type: u4
    if: version >= 3
    doc: Bytes 80-83 (v3 only). Bits 32-63 of the compatible feature bit mask.
  - id: compatible_features_lo
    type: u4
    if: version >= 3
    doc: |
      Bytes 84-87 (v3 only). Bits 0-31 of the compatible feature bit mask; unknown bits may be
      ignored.
        Bit 0: Lazy refcounts bit (refcount updates may be delayed; see the dirty bit).
        Bits 1-63: Reserved (set to 0).
  - id: autoclear_features_hi
    type: u4
    if: version >= 3
    doc: Bytes 88-91 (v3 only). Bits 32-63 of the autoclear feature bit mask.
  - id: autoclear_features_lo
    type: u4
    if: version >= 3
    doc: |
      Bytes 92-95 (v3 only). Bits 0-31 of the autoclear feature bit mask. A writer that does
      not know a bit must clear it when it writes to the image.
        Bit 0: Bitmaps extension bit (the bitmaps extension is consistent).
        Bit 1: Raw external data bit (the external data file is a valid raw image;
               only valid together with incompatible bit 2).
        Bits 2-63: Reserved (set to 0).
  - id: refcount_order
    type: u4
    if: version >= 3
    doc: |
      Bytes 96-99 (v3 only). Describes the width of a reference count block entry:
      refcount_bits = 1 << refcount_order. May not exceed 6 (64 bit refcounts).
      Version 2 images implicitly use refcount_order 4.
  - id: header_length
    type: u4
    if: version >= 3
    valid:
      min: 104
    doc: |
      Bytes 100-103 (v3 only). Length of the header structure in bytes; at least 104 and a
      multiple of 8. For version 2 images the length is always 72 bytes.
  - id: compression_type
    type: u1
    enum: compression_type
    if: version >= 3 and header_length > 104
    doc: |
      Byte 104 (v3 only, present only if header_length > 104). Compression method used for
      compressed clusters; all compressed clusters of an image use the same type. If it is
      non-zero, incompatible feature bit 3 must be set.
        0: zlib (QEMU stores raw deflate streams, without the zlib header)
        1: zstd
  - id: unknown_header_fields
    size: header_length - 105
    if: version >= 3 and header_length > 105
    doc: |
      Bytes 105 up to header_length - 1 (v3 only): padding to a multiple of 8 and any header
      fields added by later versions of the specification. Kept verbatim so a writer can
      preserve them.
  - id: extensions
    type: header_extension
    repeat: until
    repeat-until: _.type == extension_type::end or _io.pos >= extensions_end
    if: header_size < extensions_end
    doc: |
      Header extensions, starting directly after the header (at header_size). The list ends
      with the end-of-header-extension-area marker (type 0), which is included as the last
      element, or when extensions_end is reached.
instances:
  header_size:
    value: 'version >= 3 ? header_length : 72'
    -ts-type: number
    doc: Length of the header in bytes (header_length for v3, 72 for v2); extensions start here.
  backing_file_offset:
    value: backing_file_offset_hi * 4294967296 + backing_file_offset_lo
    -ts-type: number
    doc: backing_file_offset as a JS number (exact when backing_file_offset_hi < 2^21).
  has_backing_file:
    value: backing_file_offset_hi != 0 or backing_file_offset_lo != 0
    -ts-type: boolean
    doc: True when backing_file_offset is non-zero.
  size:
    value: size_hi * 4294967296 + size_lo
    -ts-type: number
    doc: Virtual disk size as a JS number (exact when size_hi < 2^21).
  l1_table_offset:
    value: l1_table_offset_hi * 4294967296 + l1_table_offset_lo
    -ts-type: number
    doc: l1_table_offset as a JS number (exact when l1_table_offset_hi < 2^21).
  refcount_table_offset:
    value: refcount_table_offset_hi * 4294967296 + refcount_table_offset_lo
    -ts-type: number
    doc: refcount_table_offset as a JS number (exact when refcount_table_offset_hi < 2^21).
  snapshots_offset:
    value: snapshots_offset_hi * 4294967296 + snapshots_offset_lo
    -ts-type: number
    doc: snapshots_offset as a JS number (exact when snapshots_offset_hi < 2^21).
  cluster_size:
    value: 'cluster_bits <= 30 ? 1 << cluster_bits : 0'
    -ts-type: number
    doc: Cluster size in bytes (1 << cluster_bits); 0 when cluster_bits > 30 (invalid image).
  refcount_bits:
    value: 'version >= 3 ? (refcount_order <= 30 ? 1 << refcount_order : 0) : 16'
    -ts-type: number
    doc: Width of a refcount block entry in bits (16 for version 2); 0 if refcount_order > 30.
  extensions_end:
    value: >-
      (has_backing_file and backing_file_offset < _io.size) ? backing_file_offset
      : ((cluster_bits <= 30 and cluster_size < _io.size) ? cluster_size : _io.size)
    -ts-type: number
    doc: |
      Where the header extension area ends for parsing purposes: the backing file name offset
      if set, else the end of the first cluster, clamped to the number of bytes supplied
      (QEMU uses the same bound, without the clamp).
  backing_file_name:
    pos: backing_file_offset
    size: backing_file_size
    type: str
    encoding: UTF-8
    if: has_backing_file
    doc: |
      The backing file name: backing_file_size bytes at backing_file_offset, not
      NUL-terminated. Only present when backing_file_offset is non-zero; reading it throws
      if those bytes were not supplied.
  incompat_dirty:
    value: (incompatible_features_lo & 1) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Incompatible feature bit 0, dirty bit (v3 only).
  incompat_corrupt:
    value: (incompatible_features_lo & 2) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Incompatible feature bit 1, corrupt bit (v3 only).
  incompat_external_data_file:
    value: (incompatible_features_lo & 4) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Incompatible feature bit 2, external data file bit (v3 only).
  incompat_compression_type:
    value: (incompatible_features_lo & 8) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Incompatible feature bit 3, compression type bit (v3 only).
  incompat_extended_l2:
    value: (incompatible_features_lo & 16) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Incompatible feature bit 4, extended L2 entries (v3 only).
  has_unknown_incompatible_features:
    value: incompatible_features_hi != 0 or incompatible_features_lo > 31
    if: version >= 3
    -ts-type: boolean
    doc: True when any incompatible feature bit other than bits 0-4 is set (v3 only).
  compat_lazy_refcounts:
    value: (compatible_features_lo & 1) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Compatible feature bit 0, lazy refcounts (v3 only).
  autoclear_bitmaps:
    value: (autoclear_features_lo & 1) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Autoclear feature bit 0, bitmaps extension consistent (v3 only).
  autoclear_raw_external_data:
    value: (autoclear_features_lo & 2) != 0
    if: version >= 3
    -ts-type: boolean
    doc: Autoclear feature bit 1, raw external data (v3 only).
types:
  header_extension:
    doc: |
      One header extension:
        Byte 0-3: Header extension type (see extension_type)
        4-7:      Length of the header extension data
        8-n:      Header extension data
        n-m:      Padding to round up the header extension size to the next multiple of 8
    seq:
      - id: type
        type: u4
        enum: extension_type
        doc: Bytes 0-3. Header extension type.
      - id: length
        type: u4
        doc: Bytes 4-7. Length of the header extension data, excluding padding.
      - id: data
        size: length
        type:
          switch-on: type
          cases:
            'extension_type::backing_file_format': backing_file_format_name
            'extension_type::feature_name_table': feature_name_table
            'extension_type::bitmaps': bitmaps_extension
            'extension_type::full_disk_encryption': full_disk_encryption_header_pointer
            'extension_type::external_data_file': external_data_file_name
        doc: |
          Header extension data (length bytes). Parsed for the known types; raw bytes for the
          end marker and for unknown types.
      - id: padding
        size: (-length) % 8
        doc: Padding up to the next multiple of 8 (should be zero).
  backing_file_format_name:
    doc: |
      Backing file format name (type 0xe2792aca): a string naming the backing file's format,
      e.g. "qcow2" or "raw". It is not NUL-terminated.
    seq:
      - id: name
        type: str
        size-eos: true
        encoding: UTF-8
        doc: The backing file format name.
  external_data_file_name:
    doc: |
      External data file name (type 0x44415441): the file name of the external data file,
      not NUL-terminated. Only valid with incompatible feature bit 2.
    seq:
      - id: name
        type: str
        size-eos: true
        encoding: UTF-8
        doc: The external data file name.
  feature_name_table:
    doc: |
      Feature name table (type 0x6803f857): optional human-readable names for feature bits, an
      array of 48-byte entries.
    seq:
      - id: entries
        type: feature_name_entry
        repeat: eos
        doc: Feature name entries.
  feature_name_entry:
    doc: |
      One feature name table entry (48 bytes):
        Byte 0:   Type of feature (0 incompatible, 1 compatible, 2 autoclear)
        1:        Bit number within the selected feature bitmap (0-63)
        2-47:     Feature name (padded with zeros, not necessarily NUL-terminated if it
                  uses all 46 bytes)
    seq:
      - id: type
        type: u1
        enum: feature_type
        doc: Byte 0. Type of feature.
      - id: bit_number
        type: u1
        doc: Byte 1. Bit number within the selected feature bitmap (valid values 0-63).
      - id: name
        type: str
        size: 46
        terminator: 0
        encoding: UTF-8
        doc: Bytes 2-47. Feature name; the zero padding is stripped.
  bitmaps_extension:
    doc: |
      Bitmaps extension (type 0x23852875), only meaningful when autoclear bit 0 is set:
        Byte 0-3:   nb_bitmaps (at least 1, at most 65535)
        4-7:        Reserved, must be zero
        8-15:       bitmap_directory_size (bytes, at most 64 MiB)
        16-23:      bitmap_directory_offset (cluster-aligned)
    seq:
      - id: nb_bitmaps
        type: u4
        doc: Bytes 0-3. The number of bitmaps contained in the image.
      - id: reserved
        type: u4
        doc: Bytes 4-7. Reserved, must be zero.
      - id: bitmap_directory_size_hi
        type: u4
        doc: Bytes 8-11. Bits 32-63 of bitmap_directory_size.
      - id: bitmap_directory_size_lo
        type: u4
        doc: Bytes 12-15. Bits 0-31 of bitmap_directory_size, the size of the directory in bytes.
      - id: bitmap_directory_offset_hi
        type: u4
        doc: Bytes 16-19. Bits 32-63 of bitmap_directory_offset.
      - id: bitmap_directory_offset_lo
        type: u4
        doc: Bytes 20-23. Bits 0-31 of bitmap_directory_offset, where the directory starts.
    instances:
      bitmap_directory_size:
        value: bitmap_directory_size_hi * 4294967296 + bitmap_directory_size_lo
        -ts-type: number
        doc: bitmap_directory_size as a JS number (exact when the hi half is < 2^21).
      bitmap_directory_offset:
        value: bitmap_directory_offset_hi * 4294967296 + bitmap_directory_offset_lo
        -ts-type: number
        doc: bitmap_directory_offset as a JS number (exact when the hi half is < 2^21).
  full_disk_encryption_header_pointer:
    doc: |
      Full disk encryption header pointer (type 0x0537be77), present when crypt_method is 2
      (LUKS):
        Byte 0-7:   Offset into the image file of the encryption header (cluster-aligned)
        8-15:       Length of the written encryption header in bytes
    seq:
      - id: offset_hi
        type: u4
        doc: Bytes 0-3. Bits 32-63 of offset.
      - id: offset_lo
        type: u4
        doc: Bytes 4-7. Bits 0-31 of offset.
      - id: length_hi
        type: u4
        doc: Bytes 8-11. Bits 32-63 of length.
      - id: length_lo
        type: u4
        doc: Bytes 12-15. Bits 0-31 of length.
    instances:
      offset:
        value: offset_hi * 4294967296 + offset_lo
        -ts-type: number
        doc: Encryption header offset as a JS number (exact when offset_hi < 2^21).
      length:
        value: length_hi * 4294967296 + length_lo
        -ts-type: number
        doc: Encryption header length as a JS number (exact when length_hi < 2^21).
enums:
  extension_type:
    0:
      id: end
      doc: End of the header extension area.
    0xe2792aca:
      id: backing_file_format
      doc: Backing file format name string.
    0x6803f857:
      id: feature_name_table
      doc: Feature name table.
    0x23852875:
      id: bitmaps
      doc: Bitmaps extension.
    0x0537be77:
      id: full_disk_encryption
      doc: Full disk encryption header pointer.
    0x44415441:
      id: external_data_file
      doc: External data file name string.
  feature_type:
    0: incompatible
    1: compatible
    2: autoclear
  crypt_method:
    0: none
    1: aes
    2: luks
  compression_type:
    0:
      id: zlib
      doc: Deflate (QEMU writes raw deflate streams without the zlib header).
    1: zstd
