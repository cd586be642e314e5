// Generated from spec/qcow2_snapshot_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

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
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2SnapshotTable {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, nbSnapshots: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * Number of snapshot entries to read (nb_snapshots from the header).
   *
   * (parameter)
   */
  readonly nbSnapshots: number;
  /**
   * The snapshot table entries.
   */
  readonly entries: Qcow2SnapshotTable.SnapshotEntry[];
}
export declare namespace Qcow2SnapshotTable {
  /**
   * One snapshot table entry (40 fixed bytes, extra data, id, name, padding to 8).
   */
  export class SnapshotEntry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bytes 0-3. Bits 32-63 of the snapshot's L1 table offset.
     */
    readonly l1TableOffsetHi: number;
    /**
     * Bytes 4-7. Bits 0-31 of the snapshot's L1 table offset.
     */
    readonly l1TableOffsetLo: number;
    /**
     * Bytes 8-11. Number of entries in the L1 table of the snapshot.
     */
    readonly l1Size: number;
    /**
     * Bytes 12-13. Length of the unique ID string describing the snapshot.
     */
    readonly idStrSize: number;
    /**
     * Bytes 14-15. Length of the name of the snapshot.
     */
    readonly nameSize: number;
    /**
     * Bytes 16-19. Time at which the snapshot was taken, in seconds since the Epoch.
     */
    readonly dateSec: number;
    /**
     * Bytes 20-23. Subsecond part of that time, in nanoseconds.
     */
    readonly dateNsec: number;
    /**
     * Bytes 24-27. Bits 32-63 of vm_clock_nsec.
     */
    readonly vmClockNsecHi: number;
    /**
     * Bytes 28-31. Bits 0-31 of vm_clock_nsec, the time the guest was running until the
     * snapshot was taken, in nanoseconds.
     */
    readonly vmClockNsecLo: number;
    /**
     * Bytes 32-35. Size of the VM state in bytes (0 if no VM state is saved).
     */
    readonly vmStateSize: number;
    /**
     * Bytes 36-39. Size of the extra data in this table entry.
     */
    readonly extraDataSize: number;
    /**
     * Bytes 40 .. 40+extra_data_size-1. Extra data, parsed as far as it is known.
     */
    readonly extraData: Qcow2SnapshotTable.SnapshotExtraData;
    /**
     * Raw bytes of extra_data (the substream it was parsed from).
     */
    readonly _raw_extraData: Uint8Array;
    /**
     * Unique ID string for the snapshot (not NUL-terminated).
     */
    readonly idStr: string;
    /**
     * Name of the snapshot (not NUL-terminated).
     */
    readonly name: string;
    /**
     * Padding to round the entry size up to a multiple of 8 (counted from the entry start).
     */
    readonly padding: Uint8Array;
    /**
     * The snapshot's L1 table offset as a JS number (exact when the hi half is < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly l1TableOffset: number;
    /**
     * vm_clock_nsec as a JS number (exact when vm_clock_nsec_hi < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly vmClockNsec: number;
    /**
     * Total size of this entry in bytes, including padding (a multiple of 8).
     *
     * (instance, computed lazily on first access)
     */
    readonly entrySize: number;
  }
  /**
   * The extra data of a snapshot entry (parsed from a substream of extra_data_size bytes).
   * A known field is present only if the extra data is long enough to contain it whole:
   *   Byte 0 -  7:   vm_state_size_large (entry bytes 40-47)
   *        8 - 15:   disk_size (entry bytes 48-55)
   *       16 - 23:   icount (entry bytes 56-63), -1 if icount was disabled
   * Anything after the known fields is kept in unknown_extra_data.
   */
  export class SnapshotExtraData {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bits 32-63 of the size of the VM state in bytes (64 bits).
     */
    readonly vmStateSizeLargeHi: number | undefined;
    /**
     * Bits 0-31 of the size of the VM state in bytes (64 bits).
     */
    readonly vmStateSizeLargeLo: number | undefined;
    /**
     * Bits 32-63 of the virtual disk size of the snapshot in bytes.
     */
    readonly diskSizeHi: number | undefined;
    /**
     * Bits 0-31 of the virtual disk size of the snapshot in bytes.
     */
    readonly diskSizeLo: number | undefined;
    /**
     * Bits 32-63 of icount (two's complement; 0xffffffff with icount_lo 0xffffffff is -1).
     */
    readonly icountHi: number | undefined;
    /**
     * Bits 0-31 of icount.
     */
    readonly icountLo: number | undefined;
    /**
     * Extra data beyond the known fields (empty if none), kept verbatim.
     */
    readonly unknownExtraData: Uint8Array;
    /**
     * vm_state_size_large as a JS number (exact when the hi half is < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly vmStateSizeLarge: number | undefined;
    /**
     * disk_size as a JS number (exact when disk_size_hi < 2^21).
     *
     * (instance, computed lazily on first access)
     */
    readonly diskSize: number | undefined;
    /**
     * True when icount is -1 (icount was disabled).
     *
     * (instance, computed lazily on first access)
     */
    readonly icountDisabled: boolean | undefined;
  }
}
