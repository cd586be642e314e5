// Generated from spec/qcow2_header.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2Header_, KaitaiStream) {
/**
 * The first cluster of a QCOW2 image starts with this header. All numbers are big-endian.
 * 
 * Version 2 headers are 72 bytes long. Version 3 adds the feature bit masks, refcount_order and
 * header_length (bytes 72-103); header_length is at least 104 and a multiple of 8. The
 * compression_type byte (offset 104) only exists when header_length > 104; bytes 105 up to
 * header_length - 1 are padding or fields added by later versions of the specification and are
 * kept verbatim in unknown_header_fields.
 * 
 * Header extensions follow directly after the header (at header_length for v3, at 72 for v2):
 * each is {u4 type, u4 length, data[length], padding to a multiple of 8} and the list ends with
 * the end-of-area extension (type 0). Like QEMU, parsing stops at the backing file name offset
 * (when set) or at the end of the first cluster, whichever is smaller, and never reads past the
 * end of the supplied bytes. Unknown extension types are kept as raw bytes.
 * 
 * Byte layout of the fixed part:
 *   0-3    magic "QFI\xfb"
 *   4-7    version (2 or 3)
 *   8-15   backing_file_offset (0: no backing file)
 *   16-19  backing_file_size (backing file name length, not NUL-terminated, at most 1023)
 *   20-23  cluster_bits (9..21 in QEMU; cluster size = 1 << cluster_bits)
 *   24-31  size (virtual disk size in bytes)
 *   32-35  crypt_method (0 none, 1 AES, 2 LUKS)
 *   36-39  l1_size (number of L1 entries)
 *   40-47  l1_table_offset
 *   48-55  refcount_table_offset
 *   56-59  refcount_table_clusters
 *   60-63  nb_snapshots
 *   64-71  snapshots_offset
 *   -- version 3 only --
 *   72-79  incompatible_features (bit 0 dirty, 1 corrupt, 2 external data file,
 *          3 compression type, 4 extended L2; other bits unknown: refuse to open)
 *   80-87  compatible_features (bit 0 lazy refcounts)
 *   88-95  autoclear_features (bit 0 bitmaps extension, 1 raw external data)
 *   96-99  refcount_order (refcount_bits = 1 << refcount_order, order 0..6; v2 is always 4)
 *   100-103 header_length
 *   104    compression_type (only if header_length > 104; 0 zlib/raw deflate, 1 zstd)
 *   105..header_length-1  padding / unknown future header fields
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2Header = (function() {
  Qcow2Header.CompressionType = Object.freeze({
    ZLIB: 0,
    ZSTD: 1,

    0: "ZLIB",
    1: "ZSTD",
  });

  Qcow2Header.CryptMethod = Object.freeze({
    NONE: 0,
    AES: 1,
    LUKS: 2,

    0: "NONE",
    1: "AES",
    2: "LUKS",
  });

  Qcow2Header.ExtensionType = Object.freeze({
    END: 0,
    FULL_DISK_ENCRYPTION: 87539319,
    BITMAPS: 595929205,
    EXTERNAL_DATA_FILE: 1145132097,
    FEATURE_NAME_TABLE: 1745090647,
    BACKING_FILE_FORMAT: 3799591626,

    0: "END",
    87539319: "FULL_DISK_ENCRYPTION",
    595929205: "BITMAPS",
    1145132097: "EXTERNAL_DATA_FILE",
    1745090647: "FEATURE_NAME_TABLE",
    3799591626: "BACKING_FILE_FORMAT",
  });

  Qcow2Header.FeatureType = Object.freeze({
    INCOMPATIBLE: 0,
    COMPATIBLE: 1,
    AUTOCLEAR: 2,

    0: "INCOMPATIBLE",
    1: "COMPATIBLE",
    2: "AUTOCLEAR",
  });

  function Qcow2Header(_io, _parent, _root) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;

    this._read();
  }
  Qcow2Header.prototype._read = function() {
    this.magic = this._io.readBytes(4);
    if (!((KaitaiStream.byteArrayCompare(this.magic, new Uint8Array([81, 70, 73, 251])) == 0))) {
      throw new KaitaiStream.ValidationNotEqualError(new Uint8Array([81, 70, 73, 251]), this.magic, this._io, "/seq/0");
    }
    this.version = this._io.readU4be();
    if (!( ((this.version == 2) || (this.version == 3)) )) {
      throw new KaitaiStream.ValidationNotAnyOfError(this.version, this._io, "/seq/1");
    }
    this.backingFileOffsetHi = this._io.readU4be();
    this.backingFileOffsetLo = this._io.readU4be();
    this.backingFileSize = this._io.readU4be();
    this.clusterBits = this._io.readU4be();
    this.sizeHi = this._io.readU4be();
    this.sizeLo = this._io.readU4be();
    this.cryptMethod = this._io.readU4be();
    this.l1Size = this._io.readU4be();
    this.l1TableOffsetHi = this._io.readU4be();
    this.l1TableOffsetLo = this._io.readU4be();
    this.refcountTableOffsetHi = this._io.readU4be();
    this.refcountTableOffsetLo = this._io.readU4be();
    this.refcountTableClusters = this._io.readU4be();
    this.nbSnapshots = this._io.readU4be();
    this.snapshotsOffsetHi = this._io.readU4be();
    this.snapshotsOffsetLo = this._io.readU4be();
    if (this.version >= 3) {
      this.incompatibleFeaturesHi = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.incompatibleFeaturesLo = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.compatibleFeaturesHi = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.compatibleFeaturesLo = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.autoclearFeaturesHi = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.autoclearFeaturesLo = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.refcountOrder = this._io.readU4be();
    }
    if (this.version >= 3) {
      this.headerLength = this._io.readU4be();
      if (!(this.headerLength >= 104)) {
        throw new KaitaiStream.ValidationLessThanError(104, this.headerLength, this._io, "/seq/25");
      }
    }
    if ( ((this.version >= 3) && (this.headerLength > 104)) ) {
      this.compressionType = this._io.readU1();
    }
    if ( ((this.version >= 3) && (this.headerLength > 105)) ) {
      this.unknownHeaderFields = this._io.readBytes(this.headerLength - 105);
    }
    if (this.headerSize < this.extensionsEnd) {
      this.extensions = [];
      var i = 0;
      do {
        var _ = new HeaderExtension(this._io, this, this._root);
        this.extensions.push(_);
        i++;
      } while (!( ((_.type == Qcow2Header.ExtensionType.END) || (this._io.pos >= this.extensionsEnd)) ));
    }
  }

  /**
   * Backing file format name (type 0xe2792aca): a string naming the backing file's format,
   * e.g. "qcow2" or "raw". It is not NUL-terminated.
   */

  var BackingFileFormatName = Qcow2Header.BackingFileFormatName = (function() {
    function BackingFileFormatName(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    BackingFileFormatName.prototype._read = function() {
      this.name = KaitaiStream.bytesToStr(this._io.readBytesFull(), "UTF-8");
    }

    /**
     * The backing file format name.
     */

    return BackingFileFormatName;
  })();

  /**
   * Bitmaps extension (type 0x23852875), only meaningful when autoclear bit 0 is set:
   *   Byte 0-3:   nb_bitmaps (at least 1, at most 65535)
   *   4-7:        Reserved, must be zero
   *   8-15:       bitmap_directory_size (bytes, at most 64 MiB)
   *   16-23:      bitmap_directory_offset (cluster-aligned)
   */

  var BitmapsExtension = Qcow2Header.BitmapsExtension = (function() {
    function BitmapsExtension(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    BitmapsExtension.prototype._read = function() {
      this.nbBitmaps = this._io.readU4be();
      this.reserved = this._io.readU4be();
      this.bitmapDirectorySizeHi = this._io.readU4be();
      this.bitmapDirectorySizeLo = this._io.readU4be();
      this.bitmapDirectoryOffsetHi = this._io.readU4be();
      this.bitmapDirectoryOffsetLo = this._io.readU4be();
    }

    /**
     * bitmap_directory_offset as a JS number (exact when the hi half is < 2^21).
     */
    Object.defineProperty(BitmapsExtension.prototype, 'bitmapDirectoryOffset', {
      get: function() {
        if (this._m_bitmapDirectoryOffset !== undefined)
          return this._m_bitmapDirectoryOffset;
        this._m_bitmapDirectoryOffset = this.bitmapDirectoryOffsetHi * 4294967296 + this.bitmapDirectoryOffsetLo;
        return this._m_bitmapDirectoryOffset;
      }
    });

    /**
     * bitmap_directory_size as a JS number (exact when the hi half is < 2^21).
     */
    Object.defineProperty(BitmapsExtension.prototype, 'bitmapDirectorySize', {
      get: function() {
        if (this._m_bitmapDirectorySize !== undefined)
          return this._m_bitmapDirectorySize;
        this._m_bitmapDirectorySize = this.bitmapDirectorySizeHi * 4294967296 + this.bitmapDirectorySizeLo;
        return this._m_bitmapDirectorySize;
      }
    });

    /**
     * Bytes 0-3. The number of bitmaps contained in the image.
     */

    /**
     * Bytes 4-7. Reserved, must be zero.
     */

    /**
     * Bytes 8-11. Bits 32-63 of bitmap_directory_size.
     */

    /**
     * Bytes 12-15. Bits 0-31 of bitmap_directory_size, the size of the directory in bytes.
     */

    /**
     * Bytes 16-19. Bits 32-63 of bitmap_directory_offset.
     */

    /**
     * Bytes 20-23. Bits 0-31 of bitmap_directory_offset, where the directory starts.
     */

    return BitmapsExtension;
  })();

  /**
   * External data file name (type 0x44415441): the file name of the external data file,
   * not NUL-terminated. Only valid with incompatible feature bit 2.
   */

  var ExternalDataFileName = Qcow2Header.ExternalDataFileName = (function() {
    function ExternalDataFileName(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    ExternalDataFileName.prototype._read = function() {
      this.name = KaitaiStream.bytesToStr(this._io.readBytesFull(), "UTF-8");
    }

    /**
     * The external data file name.
     */

    return ExternalDataFileName;
  })();

  /**
   * One feature name table entry (48 bytes):
   *   Byte 0:   Type of feature (0 incompatible, 1 compatible, 2 autoclear)
   *   1:        Bit number within the selected feature bitmap (0-63)
   *   2-47:     Feature name (padded with zeros, not necessarily NUL-terminated if it
   *             uses all 46 bytes)
   */

  var FeatureNameEntry = Qcow2Header.FeatureNameEntry = (function() {
    function FeatureNameEntry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    FeatureNameEntry.prototype._read = function() {
      this.type = this._io.readU1();
      this.bitNumber = this._io.readU1();
      this.name = KaitaiStream.bytesToStr(KaitaiStream.bytesTerminate(this._io.readBytes(46), 0, false), "UTF-8");
    }

    /**
     * Byte 0. Type of feature.
     */

    /**
     * Byte 1. Bit number within the selected feature bitmap (valid values 0-63).
     */

    /**
     * Bytes 2-47. Feature name; the zero padding is stripped.
     */

    return FeatureNameEntry;
  })();

  /**
   * Feature name table (type 0x6803f857): optional human-readable names for feature bits, an
   * array of 48-byte entries.
   */

  var FeatureNameTable = Qcow2Header.FeatureNameTable = (function() {
    function FeatureNameTable(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    FeatureNameTable.prototype._read = function() {
      this.entries = [];
      var i = 0;
      while (!this._io.isEof()) {
        this.entries.push(new FeatureNameEntry(this._io, this, this._root));
        i++;
      }
    }

    /**
     * Feature name entries.
     */

    return FeatureNameTable;
  })();

  /**
   * Full disk encryption header pointer (type 0x0537be77), present when crypt_method is 2
   * (LUKS):
   *   Byte 0-7:   Offset into the image file of the encryption header (cluster-aligned)
   *   8-15:       Length of the written encryption header in bytes
   */

  var FullDiskEncryptionHeaderPointer = Qcow2Header.FullDiskEncryptionHeaderPointer = (function() {
    function FullDiskEncryptionHeaderPointer(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    FullDiskEncryptionHeaderPointer.prototype._read = function() {
      this.offsetHi = this._io.readU4be();
      this.offsetLo = this._io.readU4be();
      this.lengthHi = this._io.readU4be();
      this.lengthLo = this._io.readU4be();
    }

    /**
     * Encryption header length as a JS number (exact when length_hi < 2^21).
     */
    Object.defineProperty(FullDiskEncryptionHeaderPointer.prototype, 'length', {
      get: function() {
        if (this._m_length !== undefined)
          return this._m_length;
        this._m_length = this.lengthHi * 4294967296 + this.lengthLo;
        return this._m_length;
      }
    });

    /**
     * Encryption header offset as a JS number (exact when offset_hi < 2^21).
     */
    Object.defineProperty(FullDiskEncryptionHeaderPointer.prototype, 'offset', {
      get: function() {
        if (this._m_offset !== undefined)
          return this._m_offset;
        this._m_offset = this.offsetHi * 4294967296 + this.offsetLo;
        return this._m_offset;
      }
    });

    /**
     * Bytes 0-3. Bits 32-63 of offset.
     */

    /**
     * Bytes 4-7. Bits 0-31 of offset.
     */

    /**
     * Bytes 8-11. Bits 32-63 of length.
     */

    /**
     * Bytes 12-15. Bits 0-31 of length.
     */

    return FullDiskEncryptionHeaderPointer;
  })();

  /**
   * One header extension:
   *   Byte 0-3: Header extension type (see extension_type)
   *   4-7:      Length of the header extension data
   *   8-n:      Header extension data
   *   n-m:      Padding to round up the header extension size to the next multiple of 8
   */

  var HeaderExtension = Qcow2Header.HeaderExtension = (function() {
    function HeaderExtension(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    HeaderExtension.prototype._read = function() {
      this.type = this._io.readU4be();
      this.length = this._io.readU4be();
      switch (this.type) {
      case Qcow2Header.ExtensionType.BACKING_FILE_FORMAT:
        this._raw_data = this._io.readBytes(this.length);
        var _io__raw_data = new KaitaiStream(this._raw_data);
        this.data = new BackingFileFormatName(_io__raw_data, this, this._root);
        break;
      case Qcow2Header.ExtensionType.BITMAPS:
        this._raw_data = this._io.readBytes(this.length);
        var _io__raw_data = new KaitaiStream(this._raw_data);
        this.data = new BitmapsExtension(_io__raw_data, this, this._root);
        break;
      case Qcow2Header.ExtensionType.EXTERNAL_DATA_FILE:
        this._raw_data = this._io.readBytes(this.length);
        var _io__raw_data = new KaitaiStream(this._raw_data);
        this.data = new ExternalDataFileName(_io__raw_data, this, this._root);
        break;
      case Qcow2Header.ExtensionType.FEATURE_NAME_TABLE:
        this._raw_data = this._io.readBytes(this.length);
        var _io__raw_data = new KaitaiStream(this._raw_data);
        this.data = new FeatureNameTable(_io__raw_data, this, this._root);
        break;
      case Qcow2Header.ExtensionType.FULL_DISK_ENCRYPTION:
        this._raw_data = this._io.readBytes(this.length);
        var _io__raw_data = new KaitaiStream(this._raw_data);
        this.data = new FullDiskEncryptionHeaderPointer(_io__raw_data, this, this._root);
        break;
      default:
        this.data = this._io.readBytes(this.length);
        break;
      }
      this.padding = this._io.readBytes(KaitaiStream.mod(-(this.length), 8));
    }

    /**
     * Bytes 0-3. Header extension type.
     */

    /**
     * Bytes 4-7. Length of the header extension data, excluding padding.
     */

    /**
     * Header extension data (length bytes). Parsed for the known types; raw bytes for the
     * end marker and for unknown types.
     */

    /**
     * Padding up to the next multiple of 8 (should be zero).
     */

    return HeaderExtension;
  })();

  /**
   * Autoclear feature bit 0, bitmaps extension consistent (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'autoclearBitmaps', {
    get: function() {
      if (this._m_autoclearBitmaps !== undefined)
        return this._m_autoclearBitmaps;
      if (this.version >= 3) {
        this._m_autoclearBitmaps = (this.autoclearFeaturesLo & 1) != 0;
      }
      return this._m_autoclearBitmaps;
    }
  });

  /**
   * Autoclear feature bit 1, raw external data (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'autoclearRawExternalData', {
    get: function() {
      if (this._m_autoclearRawExternalData !== undefined)
        return this._m_autoclearRawExternalData;
      if (this.version >= 3) {
        this._m_autoclearRawExternalData = (this.autoclearFeaturesLo & 2) != 0;
      }
      return this._m_autoclearRawExternalData;
    }
  });

  /**
   * The backing file name: backing_file_size bytes at backing_file_offset, not
   * NUL-terminated. Only present when backing_file_offset is non-zero; reading it throws
   * if those bytes were not supplied.
   */
  Object.defineProperty(Qcow2Header.prototype, 'backingFileName', {
    get: function() {
      if (this._m_backingFileName !== undefined)
        return this._m_backingFileName;
      if (this.hasBackingFile) {
        var _pos = this._io.pos;
        this._io.seek(this.backingFileOffset);
        this._m_backingFileName = KaitaiStream.bytesToStr(this._io.readBytes(this.backingFileSize), "UTF-8");
        this._io.seek(_pos);
      }
      return this._m_backingFileName;
    }
  });

  /**
   * backing_file_offset as a JS number (exact when backing_file_offset_hi < 2^21).
   */
  Object.defineProperty(Qcow2Header.prototype, 'backingFileOffset', {
    get: function() {
      if (this._m_backingFileOffset !== undefined)
        return this._m_backingFileOffset;
      this._m_backingFileOffset = this.backingFileOffsetHi * 4294967296 + this.backingFileOffsetLo;
      return this._m_backingFileOffset;
    }
  });

  /**
   * Cluster size in bytes (1 << cluster_bits); 0 when cluster_bits > 30 (invalid image).
   */
  Object.defineProperty(Qcow2Header.prototype, 'clusterSize', {
    get: function() {
      if (this._m_clusterSize !== undefined)
        return this._m_clusterSize;
      this._m_clusterSize = (this.clusterBits <= 30 ? 1 << this.clusterBits : 0);
      return this._m_clusterSize;
    }
  });

  /**
   * Compatible feature bit 0, lazy refcounts (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'compatLazyRefcounts', {
    get: function() {
      if (this._m_compatLazyRefcounts !== undefined)
        return this._m_compatLazyRefcounts;
      if (this.version >= 3) {
        this._m_compatLazyRefcounts = (this.compatibleFeaturesLo & 1) != 0;
      }
      return this._m_compatLazyRefcounts;
    }
  });

  /**
   * Where the header extension area ends for parsing purposes: the backing file name offset
   * if set, else the end of the first cluster, clamped to the number of bytes supplied
   * (QEMU uses the same bound, without the clamp).
   */
  Object.defineProperty(Qcow2Header.prototype, 'extensionsEnd', {
    get: function() {
      if (this._m_extensionsEnd !== undefined)
        return this._m_extensionsEnd;
      this._m_extensionsEnd = ( ((this.hasBackingFile) && (this.backingFileOffset < this._io.size))  ? this.backingFileOffset : ( ((this.clusterBits <= 30) && (this.clusterSize < this._io.size))  ? this.clusterSize : this._io.size));
      return this._m_extensionsEnd;
    }
  });

  /**
   * True when backing_file_offset is non-zero.
   */
  Object.defineProperty(Qcow2Header.prototype, 'hasBackingFile', {
    get: function() {
      if (this._m_hasBackingFile !== undefined)
        return this._m_hasBackingFile;
      this._m_hasBackingFile =  ((this.backingFileOffsetHi != 0) || (this.backingFileOffsetLo != 0)) ;
      return this._m_hasBackingFile;
    }
  });

  /**
   * True when any incompatible feature bit other than bits 0-4 is set (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'hasUnknownIncompatibleFeatures', {
    get: function() {
      if (this._m_hasUnknownIncompatibleFeatures !== undefined)
        return this._m_hasUnknownIncompatibleFeatures;
      if (this.version >= 3) {
        this._m_hasUnknownIncompatibleFeatures =  ((this.incompatibleFeaturesHi != 0) || (this.incompatibleFeaturesLo > 31)) ;
      }
      return this._m_hasUnknownIncompatibleFeatures;
    }
  });

  /**
   * Length of the header in bytes (header_length for v3, 72 for v2); extensions start here.
   */
  Object.defineProperty(Qcow2Header.prototype, 'headerSize', {
    get: function() {
      if (this._m_headerSize !== undefined)
        return this._m_headerSize;
      this._m_headerSize = (this.version >= 3 ? this.headerLength : 72);
      return this._m_headerSize;
    }
  });

  /**
   * Incompatible feature bit 3, compression type bit (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'incompatCompressionType', {
    get: function() {
      if (this._m_incompatCompressionType !== undefined)
        return this._m_incompatCompressionType;
      if (this.version >= 3) {
        this._m_incompatCompressionType = (this.incompatibleFeaturesLo & 8) != 0;
      }
      return this._m_incompatCompressionType;
    }
  });

  /**
   * Incompatible feature bit 1, corrupt bit (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'incompatCorrupt', {
    get: function() {
      if (this._m_incompatCorrupt !== undefined)
        return this._m_incompatCorrupt;
      if (this.version >= 3) {
        this._m_incompatCorrupt = (this.incompatibleFeaturesLo & 2) != 0;
      }
      return this._m_incompatCorrupt;
    }
  });

  /**
   * Incompatible feature bit 0, dirty bit (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'incompatDirty', {
    get: function() {
      if (this._m_incompatDirty !== undefined)
        return this._m_incompatDirty;
      if (this.version >= 3) {
        this._m_incompatDirty = (this.incompatibleFeaturesLo & 1) != 0;
      }
      return this._m_incompatDirty;
    }
  });

  /**
   * Incompatible feature bit 4, extended L2 entries (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'incompatExtendedL2', {
    get: function() {
      if (this._m_incompatExtendedL2 !== undefined)
        return this._m_incompatExtendedL2;
      if (this.version >= 3) {
        this._m_incompatExtendedL2 = (this.incompatibleFeaturesLo & 16) != 0;
      }
      return this._m_incompatExtendedL2;
    }
  });

  /**
   * Incompatible feature bit 2, external data file bit (v3 only).
   */
  Object.defineProperty(Qcow2Header.prototype, 'incompatExternalDataFile', {
    get: function() {
      if (this._m_incompatExternalDataFile !== undefined)
        return this._m_incompatExternalDataFile;
      if (this.version >= 3) {
        this._m_incompatExternalDataFile = (this.incompatibleFeaturesLo & 4) != 0;
      }
      return this._m_incompatExternalDataFile;
    }
  });

  /**
   * l1_table_offset as a JS number (exact when l1_table_offset_hi < 2^21).
   */
  Object.defineProperty(Qcow2Header.prototype, 'l1TableOffset', {
    get: function() {
      if (this._m_l1TableOffset !== undefined)
        return this._m_l1TableOffset;
      this._m_l1TableOffset = this.l1TableOffsetHi * 4294967296 + this.l1TableOffsetLo;
      return this._m_l1TableOffset;
    }
  });

  /**
   * Width of a refcount block entry in bits (16 for version 2); 0 if refcount_order > 30.
   */
  Object.defineProperty(Qcow2Header.prototype, 'refcountBits', {
    get: function() {
      if (this._m_refcountBits !== undefined)
        return this._m_refcountBits;
      this._m_refcountBits = (this.version >= 3 ? (this.refcountOrder <= 30 ? 1 << this.refcountOrder : 0) : 16);
      return this._m_refcountBits;
    }
  });

  /**
   * refcount_table_offset as a JS number (exact when refcount_table_offset_hi < 2^21).
   */
  Object.defineProperty(Qcow2Header.prototype, 'refcountTableOffset', {
    get: function() {
      if (this._m_refcountTableOffset !== undefined)
        return this._m_refcountTableOffset;
      this._m_refcountTableOffset = this.refcountTableOffsetHi * 4294967296 + this.refcountTableOffsetLo;
      return this._m_refcountTableOffset;
    }
  });

  /**
   * Virtual disk size as a JS number (exact when size_hi < 2^21).
   */
  Object.defineProperty(Qcow2Header.prototype, 'size', {
    get: function() {
      if (this._m_size !== undefined)
        return this._m_size;
      this._m_size = this.sizeHi * 4294967296 + this.sizeLo;
      return this._m_size;
    }
  });

  /**
   * snapshots_offset as a JS number (exact when snapshots_offset_hi < 2^21).
   */
  Object.defineProperty(Qcow2Header.prototype, 'snapshotsOffset', {
    get: function() {
      if (this._m_snapshotsOffset !== undefined)
        return this._m_snapshotsOffset;
      this._m_snapshotsOffset = this.snapshotsOffsetHi * 4294967296 + this.snapshotsOffsetLo;
      return this._m_snapshotsOffset;
    }
  });

  /**
   * Bytes 0-3. QCOW magic string ("QFI\xfb").
   */

  /**
   * Bytes 4-7. Version number (valid values are 2 and 3).
   */

  /**
   * Bytes 8-11. Bits 32-63 of backing_file_offset.
   */

  /**
   * Bytes 12-15. Bits 0-31 of backing_file_offset: offset into the image file at which the
   * backing file name is stored (not NUL-terminated). 0 if the image has no backing file.
   * Must not be part of the first cluster's header extension area.
   */

  /**
   * Bytes 16-19. Length of the backing file name in bytes (at most 1023). Undefined if the
   * image does not have a backing file.
   */

  /**
   * Bytes 20-23. Number of bits used for addressing an offset within a cluster
   * (1 << cluster_bits is the cluster size). Must be >= 9 (512 byte clusters); QEMU
   * limits it to 21 (2 MiB clusters).
   */

  /**
   * Bytes 24-27. Bits 32-63 of size.
   */

  /**
   * Bytes 28-31. Bits 0-31 of size, the virtual disk size in bytes.
   */

  /**
   * Bytes 32-35. 0 for no encryption, 1 for AES encryption, 2 for LUKS encryption.
   */

  /**
   * Bytes 36-39. Number of entries in the active L1 table.
   */

  /**
   * Bytes 40-43. Bits 32-63 of l1_table_offset.
   */

  /**
   * Bytes 44-47. Bits 0-31 of l1_table_offset: offset into the image file at which the active
   * L1 table starts. Must be aligned to a cluster boundary.
   */

  /**
   * Bytes 48-51. Bits 32-63 of refcount_table_offset.
   */

  /**
   * Bytes 52-55. Bits 0-31 of refcount_table_offset: offset into the image file at which the
   * refcount table starts. Must be aligned to a cluster boundary.
   */

  /**
   * Bytes 56-59. Number of clusters that the refcount table occupies.
   */

  /**
   * Bytes 60-63. Number of snapshots contained in the image.
   */

  /**
   * Bytes 64-67. Bits 32-63 of snapshots_offset.
   */

  /**
   * Bytes 68-71. Bits 0-31 of snapshots_offset: offset into the image file at which the
   * snapshot table starts. Must be aligned to a cluster boundary.
   */

  /**
   * Bytes 72-75 (v3 only). Bits 32-63 of the incompatible feature bit mask (all unknown).
   */

  /**
   * Bytes 76-79 (v3 only). Bits 0-31 of the incompatible feature bit mask. An image with an
   * unknown bit set must not be opened.
   *   Bit 0: Dirty bit (refcounts may be inconsistent; only valid with lazy refcounts).
   *   Bit 1: Corrupt bit (metadata corrupted; open read-only only).
   *   Bit 2: External data file bit (guest data lives in an external data file).
   *   Bit 3: Compression type bit (compression_type field is valid and non-zero).
   *   Bit 4: Extended L2 entries (128-bit L2 entries with 32 subclusters).
   *   Bits 5-63: Reserved (set to 0).
   */

  /**
   * Bytes 80-83 (v3 only). Bits 32-63 of the compatible feature bit mask.
   */

  /**
   * Bytes 84-87 (v3 only). Bits 0-31 of the compatible feature bit mask; unknown bits may be
   * ignored.
   *   Bit 0: Lazy refcounts bit (refcount updates may be delayed; see the dirty bit).
   *   Bits 1-63: Reserved (set to 0).
   */

  /**
   * Bytes 88-91 (v3 only). Bits 32-63 of the autoclear feature bit mask.
   */

  /**
   * Bytes 92-95 (v3 only). Bits 0-31 of the autoclear feature bit mask. A writer that does
   * not know a bit must clear it when it writes to the image.
   *   Bit 0: Bitmaps extension bit (the bitmaps extension is consistent).
   *   Bit 1: Raw external data bit (the external data file is a valid raw image;
   *          only valid together with incompatible bit 2).
   *   Bits 2-63: Reserved (set to 0).
   */

  /**
   * Bytes 96-99 (v3 only). Describes the width of a reference count block entry:
   * refcount_bits = 1 << refcount_order. May not exceed 6 (64 bit refcounts).
   * Version 2 images implicitly use refcount_order 4.
   */

  /**
   * Bytes 100-103 (v3 only). Length of the header structure in bytes; at least 104 and a
   * multiple of 8. For version 2 images the length is always 72 bytes.
   */

  /**
   * Byte 104 (v3 only, present only if header_length > 104). Compression method used for
   * compressed clusters; all compressed clusters of an image use the same type. If it is
   * non-zero, incompatible feature bit 3 must be set.
   *   0: zlib (QEMU stores raw deflate streams, without the zlib header)
   *   1: zstd
   */

  /**
   * Bytes 105 up to header_length - 1 (v3 only): padding to a multiple of 8 and any header
   * fields added by later versions of the specification. Kept verbatim so a writer can
   * preserve them.
   */

  /**
   * Header extensions, starting directly after the header (at header_size). The list ends
   * with the end-of-header-extension-area marker (type 0), which is included as the last
   * element, or when extensions_end is reached.
   */

  return Qcow2Header;
})();
Qcow2Header_.Qcow2Header = Qcow2Header;
})(exports_, KaitaiStream);

export const Qcow2Header = exports_.Qcow2Header;
