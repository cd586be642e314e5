# QCOW2 internal snapshot table.
# Source: QEMU docs/interop/qcow2.rst ("Snapshots").
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
  id: qcow2_snapshot_table
  title: QCOW2 snapshot table
  ks-version: '0.11'
  endian: be
  bit-endian: be
doc: |
  The snapshot table (nb_snapshots entries at snapshots_offset) is a list of variable-length
  snapshot headers, each aligned to 8 bytes:
    Byte 0 -  7:    Offset into the image file at which the L1 table for the snapshot starts.
                    Must be aligned to a cluster boundary.
         8 - 11:    Number of entries in the L1 table of the snapshot
        12 - 13:    Length of the unique ID string describing the snapshot
        14 - 15:    Length of the name of the snapshot
        16 - 19:    Time at which the snapshot was taken in seconds since the Epoch
        20 - 23:    Subsecond part of the time at which the snapshot was taken in nanoseconds
        24 - 31:    Time that the guest was running until the snapshot was taken in
                    nanoseconds
        32 - 35:    Size of the VM state in bytes. 0 if no VM state is saved. If there is VM
                    state, it starts at the first cluster described by the snapshot's L1
                    table.
        36 - 39:    Size of extra data in the table entry (used for future extensions of the
                    format)
        variable:   Extra data for future extensions. Unknown fields must be ignored.
                    Currently defined are (offset relative to snapshot table entry):
                    Byte 40 - 47:   Size of the VM state in bytes (64 bits)
                         48 - 55:   Virtual disk size of the snapshot in bytes
                         56 - 63:   icount value (the instruction count when the snapshot
                                    was taken), -1 if icount was disabled
                    Version 3 images must include extra data at least up to byte 55.
        variable:   Unique ID string for the snapshot (not null terminated)
        variable:   Name of the snapshot (not null terminated)
        variable:   Padding to round up the snapshot header size to the next multiple of 8.
doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
params:
  - id: nb_snapshots
    type: u4
    doc: Number of snapshot entries to read (nb_snapshots from the header).
seq:
  - id: entries
    type: snapshot_entry
    repeat: expr
    repeat-expr: nb_snapshots
    doc: The snapshot table entries.
types:
  snapshot_entry:
    doc: One snapshot table entry (40 fixed bytes, extra data, id, name, padding to 8).
    seq:
      - id: l1_table_offset_hi
        type: u4
        doc: Bytes 0-3. Bits 32-63 of the snapshot's L1 table offset.
      - id: l1_table_offset_lo
        type: u4
        doc: Bytes 4-7. Bits 0-31 of the snapshot's L1 table offset.
      - id: l1_size
        type: u4
        doc: Bytes 8-11. Number of entries in the L1 table of the snapshot.
      - id: id_str_size
        type: u2
        doc: Bytes 12-13. Length of the unique ID string describing the snapshot.
      - id: name_size
        type: u2
        doc: Bytes 14-15. Length of the name of the snapshot.
      - id: date_sec
        type: u4
        doc: Bytes 16-19. Time at which the snapshot was taken, in seconds since the Epoch.
      - id: date_nsec
        type: u4
        doc: Bytes 20-23. Subsecond part of that time, in nanoseconds.
      - id: vm_clock_nsec_hi
        type: u4
        doc: Bytes 24-27. Bits 32-63 of vm_clock_nsec.
      - id: vm_clock_nsec_lo
        type: u4
        doc: |
          Bytes 28-31. Bits 0-31 of vm_clock_nsec, the time the guest was running until the
          snapshot was taken, in nanoseconds.
      - id: vm_state_size
        type: u4
        doc: Bytes 32-35. Size of the VM state in bytes (0 if no VM state is saved).
      - id: extra_data_size
        type: u4
        doc: Bytes 36-39. Size of the extra data in this table entry.
      - id: extra_data
        type: snapshot_extra_data
        size: extra_data_size
        doc: Bytes 40 .. 40+extra_data_size-1. Extra data, parsed as far as it is known.
      - id: id_str
        type: str
        size: id_str_size
        encoding: UTF-8
        doc: Unique ID string for the snapshot (not NUL-terminated).
      - id: name
        type: str
        size: name_size
        encoding: UTF-8
        doc: Name of the snapshot (not NUL-terminated).
      - id: padding
        size: (-(40 + extra_data_size + id_str_size + name_size)) % 8
        doc: Padding to round the entry size up to a multiple of 8 (counted from the entry start).
    instances:
      l1_table_offset:
        value: l1_table_offset_hi * 4294967296 + l1_table_offset_lo
        -ts-type: number
        doc: The snapshot's L1 table offset as a JS number (exact when the hi half is < 2^21).
      vm_clock_nsec:
        value: vm_clock_nsec_hi * 4294967296 + vm_clock_nsec_lo
        -ts-type: number
        doc: vm_clock_nsec as a JS number (exact when vm_clock_nsec_hi < 2^21).
      entry_size:
        value: 40 + extra_data_size + id_str_size + name_size + padding.size
        -ts-type: number
        doc: Total size of this entry in bytes, including padding (a multiple of 8).
  snapshot_extra_data:
    doc: |
      The extra data of a snapshot entry (parsed from a substream of extra_data_size bytes).
      A known field is present only if the extra data is long enough to contain it whole:
        Byte 0 -  7:   vm_state_size_large (entry bytes 40-47)
             8 - 15:   disk_size (entry bytes 48-55)
            16 - 23:   icount (entry bytes 56-63), -1 if icount was disabled
      Anything after the known fields is kept in unknown_extra_data.
    seq:
      - id: vm_state_size_large_hi
        type: u4
        if: _io.size >= 8
        doc: Bits 32-63 of the size of the VM state in bytes (64 bits).
      - id: vm_state_size_large_lo
        type: u4
        if: _io.size >= 8
        doc: Bits 0-31 of the size of the VM state in bytes (64 bits).
      - id: disk_size_hi
        type: u4
        if: _io.size >= 16
        doc: Bits 32-63 of the virtual disk size of the snapshot in bytes.
      - id: disk_size_lo
        type: u4
        if: _io.size >= 16
        doc: Bits 0-31 of the virtual disk size of the snapshot in bytes.
      - id: icount_hi
        type: u4
        if: _io.size >= 24
        doc: Bits 32-63 of icount (two's complement; 0xffffffff with icount_lo 0xffffffff is -1).
      - id: icount_lo
        type: u4
        if: _io.size >= 24
        doc: Bits 0-31 of icount.
      - id: unknown_extra_data
        size-eos: true
        doc: Extra data beyond the known fields (empty if none), kept verbatim.
    instances:
      vm_state_size_large:
        value: vm_state_size_large_hi * 4294967296 + vm_state_size_large_lo
        if: _io.size >= 8
        -ts-type: number
        doc: vm_state_size_large as a JS number (exact when the hi half is < 2^21).
      disk_size:
        value: disk_size_hi * 4294967296 + disk_size_lo
        if: _io.size >= 16
        -ts-type: number
        doc: disk_size as a JS number (exact when disk_size_hi < 2^21).
      icount_disabled:
        value: icount_hi == 0xffffffff and icount_lo == 0xffffffff
        if: _io.size >= 24
        -ts-type: boolean
        doc: True when icount is -1 (icount was disabled).
