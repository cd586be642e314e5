/**
 * The field catalogue: every field (`seq`) and derived value (`instances`) of every structure in
 * spec/*.ksy, with where it lives in a located structure and what kind of value it holds (which
 * decides the boundary values tried; values.ts). A derived value is mutated through the stored
 * bits it is computed from (`size` through bytes 24-31, `cluster_size` through `cluster_bits`,
 * an L2 table's `entry_size` through the header's extended-L2 bit). test/unit/fuzz-fields.test.ts
 * reads the .ksy files and fails when a field has no entry here, or an entry names no field.
 */
import type { Instance, StructName } from './locate.js';

export type ValueKind =
  /** A byte offset in the image file. */
  | 'offset'
  /** A number of entries, clusters or sectors. */
  | 'count'
  /** A length in bytes. */
  | 'length'
  /** A small shift count (cluster_bits, refcount_order, granularity_bits). */
  | 'bits'
  | 'flags'
  | 'enum'
  | 'refcount'
  /** Any other number (dates, clocks, sizes reported only). */
  | 'value'
  /** Bytes: names, salts, padding, opaque data. */
  | 'bytes'
  /** A whole table of entries. */
  | 'table';

export type Slot =
  /** Bits [shift, shift + width) of the big-endian `size`-byte word at `at`; a value v is stored as v / scale. */
  | { type: 'number'; at: number; size: number; shift: number; width: number; scale: bigint }
  | { type: 'region'; at: number; length: number };

export interface FieldDef {
  /** `ksy id/type id/field id`, as the .ksy names it. */
  key: string;
  /** The structure the mutation lands in, when not the field's own (derived values). */
  on?: StructName;
  kind: ValueKind;
  /** Where the field is in this instance; undefined when the instance has no such field (v2 header, standard L2). */
  slot(inst: Instance): Slot | undefined;
  /** Values worth trying for enums and magic numbers. */
  choices?: readonly bigint[];
}

type At = number | ((inst: Instance) => number);
type When = (inst: Instance) => boolean;
const at = (a: At, inst: Instance) => inst.base + (typeof a === 'number' ? a : a(inst));

function num(
  key: string,
  kind: ValueKind,
  where: At,
  size: number,
  o: { shift?: number; width?: number; scale?: bigint; when?: When; on?: StructName; choices?: readonly bigint[] } = {},
): FieldDef {
  return {
    key,
    kind,
    ...(o.on ? { on: o.on } : {}),
    ...(o.choices ? { choices: o.choices } : {}),
    slot: (inst) =>
      o.when && !o.when(inst)
        ? undefined
        : { type: 'number', at: at(where, inst), size, shift: o.shift ?? 0, width: o.width ?? size * 8, scale: o.scale ?? 1n },
  };
}

function region(key: string, where: At, length: number | ((inst: Instance) => number), o: { when?: When; kind?: ValueKind } = {}): FieldDef {
  return {
    key,
    kind: o.kind ?? 'bytes',
    slot: (inst) => (o.when && !o.when(inst) ? undefined : { type: 'region', at: at(where, inst), length: typeof length === 'number' ? length : length(inst) }),
  };
}

const v3 = (inst: Instance) => inst.ctx.version >= 3;
const S512 = 512n;
const S32 = 1n << 32n;
const HEADER = 'qcow2_header/qcow2_header';
const EXT_TYPES = [0n, 0xe2792acan, 0x6803f857n, 0x23852875n, 0x0537be77n, 0x44415441n, 0x12345678n];
const whole = (inst: Instance) => inst.length;

function header(): FieldDef[] {
  const k = (id: string) => `qcow2_header/qcow2_header/${id}`;
  return [
    num(k('magic'), 'enum', 0, 4, { choices: [0x514649fbn, 0x514649fan, 0n] }),
    num(k('version'), 'enum', 4, 4, { choices: [0n, 1n, 2n, 3n, 4n] }),
    num(k('backing_file_offset_hi'), 'offset', 8, 4, { scale: S32 }),
    num(k('backing_file_offset_lo'), 'offset', 12, 4),
    num(k('backing_file_size'), 'length', 16, 4),
    num(k('cluster_bits'), 'bits', 20, 4),
    num(k('size_hi'), 'length', 24, 4, { scale: S32 }),
    num(k('size_lo'), 'length', 28, 4),
    num(k('crypt_method'), 'enum', 32, 4, { choices: [0n, 1n, 2n, 3n] }),
    num(k('l1_size'), 'count', 36, 4),
    num(k('l1_table_offset_hi'), 'offset', 40, 4, { scale: S32 }),
    num(k('l1_table_offset_lo'), 'offset', 44, 4),
    num(k('refcount_table_offset_hi'), 'offset', 48, 4, { scale: S32 }),
    num(k('refcount_table_offset_lo'), 'offset', 52, 4),
    num(k('refcount_table_clusters'), 'count', 56, 4),
    num(k('nb_snapshots'), 'count', 60, 4),
    num(k('snapshots_offset_hi'), 'offset', 64, 4, { scale: S32 }),
    num(k('snapshots_offset_lo'), 'offset', 68, 4),
    num(k('incompatible_features_hi'), 'flags', 72, 4, { when: v3 }),
    num(k('incompatible_features_lo'), 'flags', 76, 4, { when: v3 }),
    num(k('compatible_features_hi'), 'flags', 80, 4, { when: v3 }),
    num(k('compatible_features_lo'), 'flags', 84, 4, { when: v3 }),
    num(k('autoclear_features_hi'), 'flags', 88, 4, { when: v3 }),
    num(k('autoclear_features_lo'), 'flags', 92, 4, { when: v3 }),
    num(k('refcount_order'), 'bits', 96, 4, { when: v3 }),
    num(k('header_length'), 'length', 100, 4, { when: v3 }),
    num(k('compression_type'), 'enum', 104, 1, { when: (i) => v3(i) && i.length > 104, choices: [0n, 1n, 2n, 0xffn] }),
    region(k('unknown_header_fields'), 105, (i) => i.length - 105, { when: (i) => v3(i) && i.length > 105 }),
    region(k('extensions'), (i) => i.length, 64, {}),
    num(k('header_size'), 'length', 100, 4, { when: v3 }),
    num(k('backing_file_offset'), 'offset', 8, 8),
    num(k('has_backing_file'), 'offset', 8, 8),
    num(k('size'), 'length', 24, 8),
    num(k('l1_table_offset'), 'offset', 40, 8),
    num(k('refcount_table_offset'), 'offset', 48, 8),
    num(k('snapshots_offset'), 'offset', 64, 8),
    num(k('cluster_size'), 'bits', 20, 4),
    num(k('refcount_bits'), 'bits', 96, 4, { when: v3 }),
    num(k('extensions_end'), 'offset', 8, 8),
    region(k('backing_file_name'), (i) => i.ctx.backingOffset ?? 0, (i) => i.ctx.backingSize ?? 0, { when: (i) => (i.ctx.backingSize ?? 0) > 0 }),
    num(k('incompat_dirty'), 'flags', 76, 4, { when: v3, shift: 0, width: 1 }),
    num(k('incompat_corrupt'), 'flags', 76, 4, { when: v3, shift: 1, width: 1 }),
    num(k('incompat_external_data_file'), 'flags', 76, 4, { when: v3, shift: 2, width: 1 }),
    num(k('incompat_compression_type'), 'flags', 76, 4, { when: v3, shift: 3, width: 1 }),
    num(k('incompat_extended_l2'), 'flags', 76, 4, { when: v3, shift: 4, width: 1 }),
    num(k('has_unknown_incompatible_features'), 'flags', 72, 8, { when: v3, shift: 5, width: 59 }),
    num(k('compat_lazy_refcounts'), 'flags', 84, 4, { when: v3, shift: 0, width: 1 }),
    num(k('autoclear_bitmaps'), 'flags', 92, 4, { when: v3, shift: 0, width: 1 }),
    num(k('autoclear_raw_external_data'), 'flags', 92, 4, { when: v3, shift: 1, width: 1 }),
  ];
}

function extensions(): FieldDef[] {
  const dataLength = (i: Instance) => i.ctx.dataLength ?? 0;
  return [
    num('qcow2_header/header_extension/type', 'enum', 0, 4, { choices: EXT_TYPES }),
    num('qcow2_header/header_extension/length', 'length', 4, 4),
    region('qcow2_header/header_extension/data', 8, dataLength),
    region('qcow2_header/header_extension/padding', (i) => 8 + dataLength(i), (i) => (8 - (dataLength(i) % 8)) % 8),
    region('qcow2_header/backing_file_format_name/name', 0, whole),
    region('qcow2_header/external_data_file_name/name', 0, whole),
    region('qcow2_header/feature_name_table/entries', 0, whole, { kind: 'table' }),
    num('qcow2_header/feature_name_entry/type', 'enum', 0, 1, { choices: [0n, 1n, 2n, 3n, 0xffn] }),
    num('qcow2_header/feature_name_entry/bit_number', 'bits', 1, 1),
    region('qcow2_header/feature_name_entry/name', 2, 46),
    num('qcow2_header/bitmaps_extension/nb_bitmaps', 'count', 0, 4),
    num('qcow2_header/bitmaps_extension/reserved', 'value', 4, 4),
    num('qcow2_header/bitmaps_extension/bitmap_directory_size_hi', 'length', 8, 4, { scale: S32 }),
    num('qcow2_header/bitmaps_extension/bitmap_directory_size_lo', 'length', 12, 4),
    num('qcow2_header/bitmaps_extension/bitmap_directory_offset_hi', 'offset', 16, 4, { scale: S32 }),
    num('qcow2_header/bitmaps_extension/bitmap_directory_offset_lo', 'offset', 20, 4),
    num('qcow2_header/bitmaps_extension/bitmap_directory_size', 'length', 8, 8),
    num('qcow2_header/bitmaps_extension/bitmap_directory_offset', 'offset', 16, 8),
    num('qcow2_header/full_disk_encryption_header_pointer/offset_hi', 'offset', 0, 4, { scale: S32 }),
    num('qcow2_header/full_disk_encryption_header_pointer/offset_lo', 'offset', 4, 4),
    num('qcow2_header/full_disk_encryption_header_pointer/length_hi', 'length', 8, 4, { scale: S32 }),
    num('qcow2_header/full_disk_encryption_header_pointer/length_lo', 'length', 12, 4),
    num('qcow2_header/full_disk_encryption_header_pointer/offset', 'offset', 0, 8),
    num('qcow2_header/full_disk_encryption_header_pointer/length', 'length', 8, 8),
  ];
}

/** The 64-bit table entries whose offset is bits 9-55 (L1, refcount table, bitmap table). */
function tables(): FieldDef[] {
  const std = (i: Instance) => i.ctx.compressed !== true;
  const cmp = (i: Instance) => i.ctx.compressed === true;
  const ext = (i: Instance) => i.ctx.extendedL2;
  const l2 = (id: string) => `qcow2_l2_table/l2_entry/${id}`;
  const cd = (id: string) => `qcow2_compressed_descriptor/qcow2_compressed_descriptor/${id}`;
  // x = 62 - (cluster_bits - 8): host offset bits 0..x-1, sector count bits x..61.
  const x = (i: Instance) => 62 - (i.ctx.clusterBits - 8);
  const descriptor = (key: string, kind: ValueKind, part: 'offset' | 'sectors' | 'hi' | 'sector_offset'): FieldDef => ({
    key,
    kind,
    slot: (i) => {
      const bits = x(i);
      if (part === 'offset') return { type: 'number', at: i.base, size: 8, shift: 0, width: bits, scale: 1n };
      if (part === 'hi') return { type: 'number', at: i.base, size: 8, shift: 32, width: Math.max(1, bits - 32), scale: S32 };
      if (part === 'sector_offset') return { type: 'number', at: i.base, size: 8, shift: 0, width: 9, scale: 1n };
      return { type: 'number', at: i.base, size: 8, shift: bits, width: 62 - bits, scale: 1n };
    },
  });
  return [
    region('qcow2_l1_table/qcow2_l1_table/entries', 0, whole, { kind: 'table' }),
    num('qcow2_l1_table/l1_entry/copied', 'flags', 0, 8, { shift: 63, width: 1 }),
    num('qcow2_l1_table/l1_entry/reserved_hi', 'flags', 0, 8, { shift: 56, width: 7 }),
    num('qcow2_l1_table/l1_entry/offset_hi', 'offset', 0, 8, { shift: 32, width: 24, scale: S32 }),
    num('qcow2_l1_table/l1_entry/offset_lo', 'offset', 0, 8, { shift: 9, width: 23, scale: S512 }),
    num('qcow2_l1_table/l1_entry/reserved_lo', 'flags', 0, 8, { shift: 0, width: 9 }),
    num('qcow2_l1_table/l1_entry/offset', 'offset', 0, 8, { shift: 9, width: 47, scale: S512 }),
    num('qcow2_l1_table/l1_entry/is_unallocated', 'value', 0, 8),
    num('qcow2_l1_table/l1_entry/has_reserved_bits', 'flags', 0, 8, { shift: 56, width: 7 }),

    region('qcow2_l2_table/qcow2_l2_table/entries', 0, whole, { kind: 'table' }),
    num('qcow2_l2_table/qcow2_l2_table/entry_size', 'flags', 76, 4, { on: HEADER, when: v3, shift: 4, width: 1 }),
    num(l2('copied'), 'flags', 0, 8, { shift: 63, width: 1 }),
    num(l2('compressed'), 'flags', 0, 8, { shift: 62, width: 1 }),
    num(l2('reserved_hi'), 'flags', 0, 8, { shift: 56, width: 6, when: std }),
    num(l2('offset_hi'), 'offset', 0, 8, { shift: 32, width: 24, scale: S32, when: std }),
    num(l2('offset_lo'), 'offset', 0, 8, { shift: 9, width: 23, scale: S512, when: std }),
    num(l2('reserved_lo'), 'flags', 0, 8, { shift: 1, width: 8, when: std }),
    num(l2('reads_as_zero'), 'flags', 0, 8, { shift: 0, width: 1, when: std }),
    num(l2('desc_hi'), 'value', 0, 8, { shift: 32, width: 30, when: cmp }),
    num(l2('desc_lo'), 'value', 0, 8, { shift: 0, width: 32, when: cmp }),
    num(l2('zero_bitmap'), 'flags', 8, 4, { when: ext }),
    num(l2('alloc_bitmap'), 'flags', 12, 4, { when: ext }),
    num(l2('offset'), 'offset', 0, 8, { shift: 9, width: 47, scale: S512, when: std }),
    num(l2('is_unallocated'), 'value', 0, 8),
    num(l2('compressed_descriptor'), 'value', 0, 8, { shift: 0, width: 62, when: cmp }),

    num(cd('flag_bits'), 'flags', 0, 8, { shift: 62, width: 2 }),
    num(cd('desc_hi'), 'value', 0, 8, { shift: 32, width: 30 }),
    num(cd('desc_lo'), 'value', 0, 8, { shift: 0, width: 32 }),
    num(cd('offset_bits'), 'bits', 20, 4, { on: HEADER }),
    descriptor(cd('nb_sectors'), 'count', 'sectors'),
    descriptor(cd('offset_hi'), 'offset', 'hi'),
    num(cd('offset_lo'), 'offset', 0, 8, { shift: 0, width: 32 }),
    descriptor(cd('offset'), 'offset', 'offset'),
    descriptor(cd('sector_offset'), 'length', 'sector_offset'),
    descriptor(cd('compressed_size'), 'count', 'sectors'),

    region('qcow2_refcount_table/qcow2_refcount_table/entries', 0, whole, { kind: 'table' }),
    num('qcow2_refcount_table/refcount_table_entry/offset_hi', 'offset', 0, 8, { shift: 32, width: 32, scale: S32 }),
    num('qcow2_refcount_table/refcount_table_entry/offset_lo', 'offset', 0, 8, { shift: 9, width: 23, scale: S512 }),
    num('qcow2_refcount_table/refcount_table_entry/reserved', 'flags', 0, 8, { shift: 0, width: 9 }),
    num('qcow2_refcount_table/refcount_table_entry/offset', 'offset', 0, 8, { shift: 9, width: 55, scale: S512 }),
    num('qcow2_refcount_table/refcount_table_entry/is_unallocated', 'value', 0, 8),

    region('qcow2_bitmap_table/qcow2_bitmap_table/entries', 0, whole, { kind: 'table' }),
    num('qcow2_bitmap_table/bitmap_table_entry/reserved_hi', 'flags', 0, 8, { shift: 56, width: 8 }),
    num('qcow2_bitmap_table/bitmap_table_entry/offset_hi', 'offset', 0, 8, { shift: 32, width: 24, scale: S32 }),
    num('qcow2_bitmap_table/bitmap_table_entry/offset_lo', 'offset', 0, 8, { shift: 9, width: 23, scale: S512 }),
    num('qcow2_bitmap_table/bitmap_table_entry/reserved_lo', 'flags', 0, 8, { shift: 1, width: 8 }),
    num('qcow2_bitmap_table/bitmap_table_entry/all_ones', 'flags', 0, 8, { shift: 0, width: 1 }),
    num('qcow2_bitmap_table/bitmap_table_entry/offset', 'offset', 0, 8, { shift: 9, width: 47, scale: S512 }),
    num('qcow2_bitmap_table/bitmap_table_entry/is_unallocated', 'value', 0, 8),
  ];
}

/** Refcount entries of every width: sub-byte ones are packed least significant bit first. */
function refcounts(): FieldDef[] {
  const entry = (id: string, order: number | 'any'): FieldDef => ({
    key: `qcow2_refcount_block/refcount_entry/${id}`,
    kind: 'refcount',
    slot: (i) => {
      const o = i.ctx.refcountOrder;
      if (order !== 'any' && o !== order) return undefined;
      const bits = 2 ** o;
      const index = i.ctx.index ?? 0;
      if (bits < 8) return { type: 'number', at: i.base + Math.floor((index * bits) / 8), size: 1, shift: (index * bits) % 8, width: bits, scale: 1n };
      if (id === 'value_lo') return { type: 'number', at: i.base + index * 8 + 4, size: 4, shift: 0, width: 32, scale: 1n };
      if (id === 'value_hi') return { type: 'number', at: i.base + index * 8, size: 4, shift: 0, width: 32, scale: 1n };
      return { type: 'number', at: i.base + (index * bits) / 8, size: bits / 8, shift: 0, width: bits, scale: 1n };
    },
  });
  return [
    region('qcow2_refcount_block/qcow2_refcount_block/entries', 0, whole, { kind: 'table' }),
    num('qcow2_refcount_block/qcow2_refcount_block/refcount_bits', 'bits', 96, 4, { on: HEADER, when: v3 }),
    entry('value_u1', 3),
    entry('value_u2', 4),
    entry('value_u4', 5),
    entry('value_hi', 6),
    entry('value_lo', 6),
    entry('value_b1', 0),
    entry('value_b2', 1),
    entry('value_b4', 2),
    entry('value', 'any'),
  ];
}

function snapshots(): FieldDef[] {
  const k = (id: string) => `qcow2_snapshot_table/snapshot_entry/${id}`;
  const e = (id: string) => `qcow2_snapshot_table/snapshot_extra_data/${id}`;
  const extra = (i: Instance) => i.ctx.extraSize ?? 0;
  const idSize = (i: Instance) => i.ctx.idSize ?? 0;
  const nameSize = (i: Instance) => i.ctx.nameSize ?? 0;
  const has = (n: number) => (i: Instance) => extra(i) >= n;
  return [
    region('qcow2_snapshot_table/qcow2_snapshot_table/entries', 0, whole, { kind: 'table' }),
    num(k('l1_table_offset_hi'), 'offset', 0, 4, { scale: S32 }),
    num(k('l1_table_offset_lo'), 'offset', 4, 4),
    num(k('l1_size'), 'count', 8, 4),
    num(k('id_str_size'), 'length', 12, 2),
    num(k('name_size'), 'length', 14, 2),
    num(k('date_sec'), 'value', 16, 4),
    num(k('date_nsec'), 'value', 20, 4),
    num(k('vm_clock_nsec_hi'), 'value', 24, 4),
    num(k('vm_clock_nsec_lo'), 'value', 28, 4),
    num(k('vm_state_size'), 'length', 32, 4),
    num(k('extra_data_size'), 'length', 36, 4),
    region(k('extra_data'), 40, extra),
    region(k('id_str'), (i) => 40 + extra(i), idSize),
    region(k('name'), (i) => 40 + extra(i) + idSize(i), nameSize),
    region(k('padding'), (i) => 40 + extra(i) + idSize(i) + nameSize(i), (i) => i.length - (40 + extra(i) + idSize(i) + nameSize(i))),
    num(k('l1_table_offset'), 'offset', 0, 8),
    num(k('vm_clock_nsec'), 'value', 24, 8),
    num(k('entry_size'), 'length', 36, 4),
    num(e('vm_state_size_large_hi'), 'length', 0, 4, { when: has(8), scale: S32 }),
    num(e('vm_state_size_large_lo'), 'length', 4, 4, { when: has(8) }),
    num(e('disk_size_hi'), 'length', 8, 4, { when: has(16), scale: S32 }),
    num(e('disk_size_lo'), 'length', 12, 4, { when: has(16) }),
    num(e('icount_hi'), 'value', 16, 4, { when: has(24) }),
    num(e('icount_lo'), 'value', 20, 4, { when: has(24) }),
    // QEMU writes 24 bytes of extra data: with none unknown, the region is the 8 bytes after them
    // (the id and name then move; an extra_data_size mutation makes them unknown extra data).
    region(e('unknown_extra_data'), 24, (i) => Math.max(8, extra(i) - 24), { when: has(24) }),
    num(e('vm_state_size_large'), 'length', 0, 8, { when: has(8) }),
    num(e('disk_size'), 'length', 8, 8, { when: has(16) }),
    num(e('icount_disabled'), 'value', 16, 8, { when: has(24) }),
  ];
}

function bitmaps(): FieldDef[] {
  const k = (id: string) => `qcow2_bitmap_directory/bitmap_directory_entry/${id}`;
  const extra = (i: Instance) => i.ctx.extraSize ?? 0;
  const nameSize = (i: Instance) => i.ctx.nameSize ?? 0;
  return [
    region('qcow2_bitmap_directory/qcow2_bitmap_directory/entries', 0, whole, { kind: 'table' }),
    num(k('bitmap_table_offset_hi'), 'offset', 0, 4, { scale: S32 }),
    num(k('bitmap_table_offset_lo'), 'offset', 4, 4),
    num(k('bitmap_table_size'), 'count', 8, 4),
    num(k('flags'), 'flags', 12, 4),
    num(k('type'), 'enum', 16, 1, { choices: [0n, 1n, 2n, 0xffn] }),
    num(k('granularity_bits'), 'bits', 17, 1),
    num(k('name_size'), 'length', 18, 2),
    num(k('extra_data_size'), 'length', 20, 4),
    region(k('extra_data'), 24, extra),
    region(k('name'), (i) => 24 + extra(i), nameSize),
    region(k('padding'), (i) => 24 + extra(i) + nameSize(i), (i) => i.length - (24 + extra(i) + nameSize(i))),
    num(k('bitmap_table_offset'), 'offset', 0, 8),
    num(k('in_use'), 'flags', 12, 4, { shift: 0, width: 1 }),
    num(k('auto'), 'flags', 12, 4, { shift: 1, width: 1 }),
    num(k('extra_data_compatible'), 'flags', 12, 4, { shift: 2, width: 1 }),
    num(k('has_reserved_flags'), 'flags', 12, 4, { shift: 3, width: 29 }),
    num(k('entry_size'), 'length', 18, 2),
  ];
}

function luks(): FieldDef[] {
  const k = (id: string) => `luks1_header/luks1_header/${id}`;
  const s = (id: string) => `luks1_header/key_slot/${id}`;
  return [
    region(k('magic'), 0, 6),
    num(k('version'), 'enum', 6, 2, { choices: [0n, 1n, 2n, 0xffffn] }),
    region(k('cipher_name'), 8, 32),
    region(k('cipher_mode'), 40, 32),
    region(k('hash_spec'), 72, 32),
    num(k('payload_offset'), 'count', 104, 4),
    num(k('key_bytes'), 'length', 108, 4),
    region(k('mk_digest'), 112, 20),
    region(k('mk_digest_salt'), 132, 32),
    num(k('mk_digest_iter'), 'count', 164, 4),
    region(k('uuid'), 168, 40),
    region(k('key_slots'), 208, 8 * 48, { kind: 'table' }),
    num(k('payload_offset_bytes'), 'offset', 104, 4, { scale: S512 }),
    num(s('active'), 'enum', 0, 4, { choices: [0x00ac71f3n, 0x0000deadn, 0n, 1n] }),
    num(s('iterations'), 'count', 4, 4),
    region(s('salt'), 8, 32),
    num(s('key_material_offset'), 'count', 40, 4),
    num(s('stripes'), 'count', 44, 4),
    num(s('is_active'), 'enum', 0, 4, { choices: [0x00ac71f3n, 0x0000deadn] }),
    num(s('key_material_offset_bytes'), 'offset', 40, 4, { scale: S512 }),
  ];
}

export const FIELDS: readonly FieldDef[] = [...header(), ...extensions(), ...tables(), ...refcounts(), ...snapshots(), ...bitmaps(), ...luks()];

/** The structure a field's mutation lands in. */
export function targetStruct(f: FieldDef): StructName {
  if (f.on) return f.on;
  const [ksy, type] = f.key.split('/');
  return `${ksy}/${type}`;
}
