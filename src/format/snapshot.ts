/**
 * Snapshot table entries (spec: "Snapshots"), variable length, 8-byte aligned:
 *
 *    0 l1_table_offset u64     16 date_sec u32        32 vm_state_size u32
 *    8 l1_size u32             20 date_nsec u32       36 extra_data_size u32
 *   12 id_str_size u16         24 vm_clock_nsec u64   40 extra_data[extra_data_size]
 *   14 name_size u16                                     id_str, name, padding to 8
 *
 * Extra data, when long enough: vm_state_size_large u64 (0), disk_size u64 (8), icount i64 (16);
 * anything else is unknown and kept. The raw extra bytes are the source of truth for encoding.
 */
import { align8, decodeString, encodeString, readU64, requireBytes, view, writeU64 } from './bytes.js';
import { SNAPSHOT_ENTRY_FIXED } from './constants.js';

export interface SnapshotExtra {
  vmStateSizeLarge?: bigint;
  diskSize?: bigint;
  /** -1 when icount was disabled. */
  icount?: bigint;
}

export interface SnapshotEntry {
  l1TableOffset: bigint;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: bigint;
  vmStateSize: number;
  extraData: Uint8Array;
  /** Known fields decoded from `extraData`. */
  extra: SnapshotExtra;
}

/** The spec: a version 3 image's snapshot entries have at least 16 bytes of extra data (vm_state_size_large, disk_size). */
export const SNAPSHOT_V3_MIN_EXTRA_DATA = 16;

export function decodeSnapshotExtra(extraData: Uint8Array): SnapshotExtra {
  const dv = view(extraData);
  const extra: SnapshotExtra = {};
  if (extraData.byteLength >= 8) extra.vmStateSizeLarge = readU64(dv, 0);
  if (extraData.byteLength >= 16) extra.diskSize = readU64(dv, 8);
  if (extraData.byteLength >= 24) extra.icount = dv.getBigInt64(16, false);
  return extra;
}

/** Builds extra data holding the known fields that are given, followed by `unknown` bytes. */
export function encodeSnapshotExtra(extra: SnapshotExtra, unknown: Uint8Array = new Uint8Array(0)): Uint8Array {
  const known = extra.icount !== undefined ? 24 : extra.diskSize !== undefined ? 16 : extra.vmStateSizeLarge !== undefined ? 8 : 0;
  const out = new Uint8Array(known + unknown.byteLength);
  const dv = view(out);
  if (known >= 8) writeU64(dv, 0, extra.vmStateSizeLarge ?? 0n);
  if (known >= 16) writeU64(dv, 8, extra.diskSize ?? 0n);
  if (known >= 24) dv.setBigInt64(16, extra.icount ?? -1n, false);
  out.set(unknown, known);
  return out;
}

/** Size of one encoded entry, padding included. */
export function snapshotEntrySize(e: Pick<SnapshotEntry, 'extraData' | 'id' | 'name'>): number {
  return align8(SNAPSHOT_ENTRY_FIXED + e.extraData.byteLength + encodeString(e.id).byteLength + encodeString(e.name).byteLength);
}

/**
 * Decodes `count` entries from `bytes` (the table as read from `fileOffset`). Throws a typed
 * `truncated` error naming the entry when the bytes end early.
 */
export function decodeSnapshotTable(bytes: Uint8Array, count: number, fileOffset = 0): { entries: SnapshotEntry[]; size: number } {
  const dv = view(bytes);
  const entries: SnapshotEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    requireBytes(bytes, at, SNAPSHOT_ENTRY_FIXED, `snapshot[${i}]`, fileOffset);
    const idSize = dv.getUint16(at + 12);
    const nameSize = dv.getUint16(at + 14);
    const extraSize = dv.getUint32(at + 36);
    const variable = extraSize + idSize + nameSize;
    requireBytes(bytes, at + SNAPSHOT_ENTRY_FIXED, variable, `snapshot[${i}]`, fileOffset);
    let p = at + SNAPSHOT_ENTRY_FIXED;
    const extraData = bytes.slice(p, p + extraSize);
    p += extraSize;
    const id = decodeString(bytes.subarray(p, p + idSize));
    p += idSize;
    const name = decodeString(bytes.subarray(p, p + nameSize));
    entries.push({
      l1TableOffset: readU64(dv, at),
      l1Size: dv.getUint32(at + 8),
      id,
      name,
      dateSec: dv.getUint32(at + 16),
      dateNsec: dv.getUint32(at + 20),
      vmClockNsec: readU64(dv, at + 24),
      vmStateSize: dv.getUint32(at + 32),
      extraData,
      extra: decodeSnapshotExtra(extraData),
    });
    at += align8(SNAPSHOT_ENTRY_FIXED + variable);
  }
  return { entries, size: at };
}

export function encodeSnapshotTable(entries: readonly SnapshotEntry[]): Uint8Array {
  const total = entries.reduce((n, e) => n + snapshotEntrySize(e), 0);
  const bytes = new Uint8Array(total);
  const dv = view(bytes);
  let at = 0;
  for (const e of entries) {
    const id = encodeString(e.id);
    const name = encodeString(e.name);
    writeU64(dv, at, e.l1TableOffset);
    dv.setUint32(at + 8, e.l1Size);
    dv.setUint16(at + 12, id.byteLength);
    dv.setUint16(at + 14, name.byteLength);
    dv.setUint32(at + 16, e.dateSec);
    dv.setUint32(at + 20, e.dateNsec);
    writeU64(dv, at + 24, e.vmClockNsec);
    dv.setUint32(at + 32, e.vmStateSize);
    dv.setUint32(at + 36, e.extraData.byteLength);
    let p = at + SNAPSHOT_ENTRY_FIXED;
    bytes.set(e.extraData, p);
    p += e.extraData.byteLength;
    bytes.set(id, p);
    p += id.byteLength;
    bytes.set(name, p);
    at += snapshotEntrySize(e);
  }
  return bytes;
}
