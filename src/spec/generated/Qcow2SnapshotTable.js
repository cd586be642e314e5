// Generated from spec/qcow2_snapshot_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2SnapshotTable_, KaitaiStream) {
/**
 * The snapshot table (nb_snapshots entries at snapshots_offset) is a list of variable-length
 * snapshot headers, each aligned to 8 bytes:
 *   Byte 0 -  7:    Offset into the image file at which the L1 table for the snapshot starts.
 *                   Must be aligned to a cluster boundary.
 *        8 - 11:    Number of entries in the L1 table of the snapshot
 *       12 - 13:    Length of the unique ID string describing the snapshot
 *       14 - 15:    Length of the name of the snapshot
 *       16 - 19:    Time at which the snapshot was taken in seconds since the Epoch
 *       20 - 23:    Subsecond part of the time at which the snapshot was taken in nanoseconds
 *       24 - 31:    Time that the guest was running until the snapshot was taken in
 *                   nanoseconds
 *       32 - 35:    Size of the VM state in bytes. 0 if no VM state is saved. If there is VM
 *                   state, it starts at the first cluster described by the snapshot's L1
 *                   table.
 *       36 - 39:    Size of extra data in the table entry (used for future extensions of the
 *                   format)
 *       variable:   Extra data for future extensions. Unknown fields must be ignored.
 *                   Currently defined are (offset relative to snapshot table entry):
 *                   Byte 40 - 47:   Size of the VM state in bytes (64 bits)
 *                        48 - 55:   Virtual disk size of the snapshot in bytes
 *                        56 - 63:   icount value (the instruction count when the snapshot
 *                                   was taken), -1 if icount was disabled
 *                   Version 3 images must include extra data at least up to byte 55.
 *       variable:   Unique ID string for the snapshot (not null terminated)
 *       variable:   Name of the snapshot (not null terminated)
 *       variable:   Padding to round up the snapshot header size to the next multiple of 8.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2SnapshotTable = (function() {
  function Qcow2SnapshotTable(_io, _parent, _root, nbSnapshots) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.nbSnapshots = nbSnapshots;

    this._read();
  }
  Qcow2SnapshotTable.prototype._read = function() {
    this.entries = [];
    for (var i = 0; i < this.nbSnapshots; i++) {
      this.entries.push(new SnapshotEntry(this._io, this, this._root));
    }
  }

  /**
   * One snapshot table entry (40 fixed bytes, extra data, id, name, padding to 8).
   */

  var SnapshotEntry = Qcow2SnapshotTable.SnapshotEntry = (function() {
    function SnapshotEntry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    SnapshotEntry.prototype._read = function() {
      this.l1TableOffsetHi = this._io.readU4be();
      this.l1TableOffsetLo = this._io.readU4be();
      this.l1Size = this._io.readU4be();
      this.idStrSize = this._io.readU2be();
      this.nameSize = this._io.readU2be();
      this.dateSec = this._io.readU4be();
      this.dateNsec = this._io.readU4be();
      this.vmClockNsecHi = this._io.readU4be();
      this.vmClockNsecLo = this._io.readU4be();
      this.vmStateSize = this._io.readU4be();
      this.extraDataSize = this._io.readU4be();
      this._raw_extraData = this._io.readBytes(this.extraDataSize);
      var _io__raw_extraData = new KaitaiStream(this._raw_extraData);
      this.extraData = new SnapshotExtraData(_io__raw_extraData, this, this._root);
      this.idStr = KaitaiStream.bytesToStr(this._io.readBytes(this.idStrSize), "UTF-8");
      this.name = KaitaiStream.bytesToStr(this._io.readBytes(this.nameSize), "UTF-8");
      this.padding = this._io.readBytes(KaitaiStream.mod(-(((40 + this.extraDataSize) + this.idStrSize) + this.nameSize), 8));
    }

    /**
     * Total size of this entry in bytes, including padding (a multiple of 8).
     */
    Object.defineProperty(SnapshotEntry.prototype, 'entrySize', {
      get: function() {
        if (this._m_entrySize !== undefined)
          return this._m_entrySize;
        this._m_entrySize = (((40 + this.extraDataSize) + this.idStrSize) + this.nameSize) + this.padding.length;
        return this._m_entrySize;
      }
    });

    /**
     * The snapshot's L1 table offset as a JS number (exact when the hi half is < 2^21).
     */
    Object.defineProperty(SnapshotEntry.prototype, 'l1TableOffset', {
      get: function() {
        if (this._m_l1TableOffset !== undefined)
          return this._m_l1TableOffset;
        this._m_l1TableOffset = this.l1TableOffsetHi * 4294967296 + this.l1TableOffsetLo;
        return this._m_l1TableOffset;
      }
    });

    /**
     * vm_clock_nsec as a JS number (exact when vm_clock_nsec_hi < 2^21).
     */
    Object.defineProperty(SnapshotEntry.prototype, 'vmClockNsec', {
      get: function() {
        if (this._m_vmClockNsec !== undefined)
          return this._m_vmClockNsec;
        this._m_vmClockNsec = this.vmClockNsecHi * 4294967296 + this.vmClockNsecLo;
        return this._m_vmClockNsec;
      }
    });

    /**
     * Bytes 0-3. Bits 32-63 of the snapshot's L1 table offset.
     */

    /**
     * Bytes 4-7. Bits 0-31 of the snapshot's L1 table offset.
     */

    /**
     * Bytes 8-11. Number of entries in the L1 table of the snapshot.
     */

    /**
     * Bytes 12-13. Length of the unique ID string describing the snapshot.
     */

    /**
     * Bytes 14-15. Length of the name of the snapshot.
     */

    /**
     * Bytes 16-19. Time at which the snapshot was taken, in seconds since the Epoch.
     */

    /**
     * Bytes 20-23. Subsecond part of that time, in nanoseconds.
     */

    /**
     * Bytes 24-27. Bits 32-63 of vm_clock_nsec.
     */

    /**
     * Bytes 28-31. Bits 0-31 of vm_clock_nsec, the time the guest was running until the
     * snapshot was taken, in nanoseconds.
     */

    /**
     * Bytes 32-35. Size of the VM state in bytes (0 if no VM state is saved).
     */

    /**
     * Bytes 36-39. Size of the extra data in this table entry.
     */

    /**
     * Bytes 40 .. 40+extra_data_size-1. Extra data, parsed as far as it is known.
     */

    /**
     * Unique ID string for the snapshot (not NUL-terminated).
     */

    /**
     * Name of the snapshot (not NUL-terminated).
     */

    /**
     * Padding to round the entry size up to a multiple of 8 (counted from the entry start).
     */

    return SnapshotEntry;
  })();

  /**
   * The extra data of a snapshot entry (parsed from a substream of extra_data_size bytes).
   * A known field is present only if the extra data is long enough to contain it whole:
   *   Byte 0 -  7:   vm_state_size_large (entry bytes 40-47)
   *        8 - 15:   disk_size (entry bytes 48-55)
   *       16 - 23:   icount (entry bytes 56-63), -1 if icount was disabled
   * Anything after the known fields is kept in unknown_extra_data.
   */

  var SnapshotExtraData = Qcow2SnapshotTable.SnapshotExtraData = (function() {
    function SnapshotExtraData(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    SnapshotExtraData.prototype._read = function() {
      if (this._io.size >= 8) {
        this.vmStateSizeLargeHi = this._io.readU4be();
      }
      if (this._io.size >= 8) {
        this.vmStateSizeLargeLo = this._io.readU4be();
      }
      if (this._io.size >= 16) {
        this.diskSizeHi = this._io.readU4be();
      }
      if (this._io.size >= 16) {
        this.diskSizeLo = this._io.readU4be();
      }
      if (this._io.size >= 24) {
        this.icountHi = this._io.readU4be();
      }
      if (this._io.size >= 24) {
        this.icountLo = this._io.readU4be();
      }
      this.unknownExtraData = this._io.readBytesFull();
    }

    /**
     * disk_size as a JS number (exact when disk_size_hi < 2^21).
     */
    Object.defineProperty(SnapshotExtraData.prototype, 'diskSize', {
      get: function() {
        if (this._m_diskSize !== undefined)
          return this._m_diskSize;
        if (this._io.size >= 16) {
          this._m_diskSize = this.diskSizeHi * 4294967296 + this.diskSizeLo;
        }
        return this._m_diskSize;
      }
    });

    /**
     * True when icount is -1 (icount was disabled).
     */
    Object.defineProperty(SnapshotExtraData.prototype, 'icountDisabled', {
      get: function() {
        if (this._m_icountDisabled !== undefined)
          return this._m_icountDisabled;
        if (this._io.size >= 24) {
          this._m_icountDisabled =  ((this.icountHi == 4294967295) && (this.icountLo == 4294967295)) ;
        }
        return this._m_icountDisabled;
      }
    });

    /**
     * vm_state_size_large as a JS number (exact when the hi half is < 2^21).
     */
    Object.defineProperty(SnapshotExtraData.prototype, 'vmStateSizeLarge', {
      get: function() {
        if (this._m_vmStateSizeLarge !== undefined)
          return this._m_vmStateSizeLarge;
        if (this._io.size >= 8) {
          this._m_vmStateSizeLarge = this.vmStateSizeLargeHi * 4294967296 + this.vmStateSizeLargeLo;
        }
        return this._m_vmStateSizeLarge;
      }
    });

    /**
     * Bits 32-63 of the size of the VM state in bytes (64 bits).
     */

    /**
     * Bits 0-31 of the size of the VM state in bytes (64 bits).
     */

    /**
     * Bits 32-63 of the virtual disk size of the snapshot in bytes.
     */

    /**
     * Bits 0-31 of the virtual disk size of the snapshot in bytes.
     */

    /**
     * Bits 32-63 of icount (two's complement; 0xffffffff with icount_lo 0xffffffff is -1).
     */

    /**
     * Bits 0-31 of icount.
     */

    /**
     * Extra data beyond the known fields (empty if none), kept verbatim.
     */

    return SnapshotExtraData;
  })();

  /**
   * The snapshot table entries.
   */

  /**
   * Number of snapshot entries to read (nb_snapshots from the header).
   */

  return Qcow2SnapshotTable;
})();
Qcow2SnapshotTable_.Qcow2SnapshotTable = Qcow2SnapshotTable;
})(exports_, KaitaiStream);

export const Qcow2SnapshotTable = exports_.Qcow2SnapshotTable;
