/**
 * The mutators: from a seed's located structures, a random list of concrete mutations. Most set one
 * field of one structure (chosen among the catalogue's fields that the seed has) to a boundary
 * value; the rest flip a bit (mostly inside metadata), truncate the file, or copy one structure over
 * another of the same kind (two tables sharing clusters) or one cluster over another.
 */
import { FIELDS, type FieldDef, targetStruct } from './fields.js';
import type { Instance, SeedMap } from './locate.js';
import { getBits, type Mutation, toHex } from './mutation.js';
import { below, boundaryValue, HOSTILE_NAMES, pick, regionBytes, type Rng } from './values.js';

export interface MutableSeed {
  name: string;
  bytes: Uint8Array;
  map: SeedMap;
}

/** The fields of the catalogue that have an instance in this seed, with those instances. */
export function applicableFields(map: SeedMap): Array<{ field: FieldDef; instances: Instance[] }> {
  const out: Array<{ field: FieldDef; instances: Instance[] }> = [];
  for (const field of FIELDS) {
    const instances = (map.instances.get(targetStruct(field)) ?? []).filter((i) => field.slot(i) !== undefined);
    if (instances.length > 0) out.push({ field, instances });
  }
  return out;
}

const cache = new WeakMap<SeedMap, ReturnType<typeof applicableFields>>();

/** The backing file name replaced by another of its own length: the name bytes and backing_file_size. */
function renameBacking(rng: Rng, at: number): Mutation[] {
  const name = Buffer.from(pick(rng, HOSTILE_NAMES.filter((n) => n !== '')));
  return [
    { op: 'bytes', field: 'qcow2_header.backing_file_name', at, hex: toHex(name), why: `name '${name.toString().slice(0, 40)}'` },
    { op: 'set', field: 'qcow2_header.backing_file_size', at: 16, size: 4, shift: 0, width: 32, value: `0x${name.byteLength.toString(16)}`, why: 'the new name\'s length' },
  ];
}

export function fieldMutations(rng: Rng, seed: MutableSeed, field: FieldDef, inst: Instance): Mutation[] {
  const slot = field.slot(inst);
  if (slot?.type === 'region' && field.key === 'qcow2_header/qcow2_header/backing_file_name' && below(rng, 2) === 0) return renameBacking(rng, slot.at);
  const m = fieldMutation(rng, seed, field, inst);
  return m ? [m] : [];
}

export function fieldMutation(rng: Rng, seed: MutableSeed, field: FieldDef, inst: Instance): Mutation | undefined {
  const slot = field.slot(inst);
  if (!slot) return undefined;
  const name = field.key.split('/').slice(1).join('.');
  if (slot.type === 'number') {
    const raw = getBits(seed.bytes, slot.at, slot.size, slot.shift, slot.width);
    const { value, why } = boundaryValue(rng, field.kind, raw * slot.scale, slot.width, slot.scale, seed.map, field.choices);
    const stored = (value / slot.scale) & ((1n << BigInt(slot.width)) - 1n);
    const cut = stored * slot.scale !== value ? `, cut to the field's ${slot.width} bits` : '';
    return { op: 'set', field: name, at: slot.at, size: slot.size, shift: slot.shift, width: slot.width, value: `0x${stored.toString(16)}`, why: `${why}${cut}` };
  }
  if (slot.length <= 0) return undefined;
  if (field.kind === 'table' && below(rng, 2) === 0) {
    const unit = slot.length % 16 === 0 && inst.ctx.extendedL2 ? 16 : slot.length % 48 === 0 && slot.length < 1024 ? 48 : 8;
    const count = Math.floor(slot.length / unit);
    if (count >= 2) {
      const from = below(rng, count);
      const to = below(rng, count);
      return { op: 'splice', field: `${name} (entry ${from} over entry ${to})`, at: slot.at + to * unit, from: slot.at + from * unit, length: unit };
    }
  }
  const { bytes, why } = regionBytes(rng, slot.length);
  const offset = bytes.byteLength < slot.length ? below(rng, slot.length - bytes.byteLength + 1) : 0;
  return { op: 'bytes', field: name, at: slot.at + offset, hex: toHex(bytes.subarray(0, slot.length)), why };
}

function oneMutation(rng: Rng, seed: MutableSeed): Mutation | Mutation[] | undefined {
  const { map } = seed;
  const roll = below(rng, 100);
  if (roll < 75) {
    let fields = cache.get(map);
    if (!fields) cache.set(map, (fields = applicableFields(map)));
    const { field, instances } = pick(rng, fields);
    return fieldMutations(rng, seed, field, pick(rng, instances));
  }
  const all = [...map.instances.values()].flat();
  if (roll < 87) {
    const inst = pick(rng, all);
    const at = below(rng, 4) === 0 ? below(rng, map.fileSize) : inst.base + below(rng, Math.max(1, Math.min(inst.length, 4096)));
    return { op: 'flip', at, bit: below(rng, 8) };
  }
  if (roll < 93) {
    const C = map.clusterSize;
    const length = pick(rng, [
      map.fileSize - C,
      map.fileSize - 1,
      Math.floor(map.fileSize / 2 / C) * C,
      pick(rng, map.metadataOffsets),
      pick(rng, map.metadataOffsets) + 8,
      below(rng, 512),
      C,
    ]);
    return { op: 'truncate', length: Math.max(0, length) };
  }
  const inst = pick(rng, all);
  const same = map.instances.get(inst.struct) ?? [];
  const other = pick(rng, same);
  if (other !== inst && inst.length > 0 && inst.length <= 1 << 21) {
    return { op: 'splice', field: `${inst.struct.split('/')[1]} over another`, at: other.base, from: inst.base, length: inst.length };
  }
  const C = map.clusterSize;
  const clusters = Math.max(1, Math.floor(map.fileSize / C));
  return { op: 'splice', field: 'cluster over cluster', at: below(rng, clusters) * C, from: below(rng, clusters) * C, length: C };
}

/** 1 to 4 mutations (mostly 1 or 2). */
export function randomMutations(rng: Rng, seed: MutableSeed): Mutation[] {
  const n = pick(rng, [1, 1, 1, 2, 2, 3, 4]);
  const out: Mutation[] = [];
  for (let tries = 0; out.length < n && tries < n * 8; tries++) {
    const m = oneMutation(rng, seed);
    if (Array.isArray(m)) out.push(...m);
    else if (m) out.push(m);
  }
  return out;
}
