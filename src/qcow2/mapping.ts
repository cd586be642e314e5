/**
 * What one L2 entry says about its guest cluster: the union both engines decode entries into, the
 * one set of rules that classifies a decoded entry (spec: "Cluster mapping", "Extended L2
 * Entries", "Compressed Clusters Descriptor"), and the one encoder that writes entries back.
 */
import { view } from '../format/bytes.js';
import { encodeCompressedDescriptor } from '../format/compressed.js';
import { hostRangeFits, hostRangeProblem } from '../format/host-offset.js';
import type { Geometry } from '../format/geometry.js';
import { encodeL2Entry, encodeStandardDescriptor, type L2Entry } from '../format/l2.js';
import type { Features } from '../format/validate.js';

export type Mapping =
  | { kind: 'unallocated' }
  /** Data at hostOffset (in the data file when the image has one). */
  | { kind: 'normal'; hostOffset: number; copied: boolean }
  /** Reads as zeros; hostOffset 0 = no preallocated cluster. */
  | { kind: 'zero'; hostOffset: number; copied: boolean }
  /** Compressed data: `length` bytes from hostOffset to the end of the last sector. */
  | { kind: 'compressed'; hostOffset: number; length: number }
  /** Extended L2: per-subcluster allocated / zero masks; hostOffset 0 = no cluster yet. */
  | { kind: 'subclusters'; hostOffset: number; copied: boolean; alloc: number; zero: number }
  /** `at`: the file offset of the offending entry. */
  | { kind: 'invalid'; reason: string; at?: number };

/** The entries an engine writes. */
export type NewL2Entry = Exclude<Mapping, { kind: 'invalid' }>;

/** An L2 entry as either decoder (the Kaitai parser, the hand-written codec) reads it. */
export interface DecodedL2Entry {
  copied: boolean;
  /** Set when bit 62 is: the compressed descriptor's fields. */
  compressed: { hostOffset: number; beyond2To53: boolean; additionalSectors: number } | undefined;
  /** The standard descriptor's host offset (bits 9-55) and zero flag (bit 0). */
  hostOffset: number;
  zeroFlag: boolean;
  /** Extended L2 only (0 otherwise). */
  allocBitmap: number;
  zeroBitmap: number;
}

export interface ClassifyContext {
  geometry: Pick<Geometry, 'clusterSize' | 'extendedL2'>;
  externalDataFile: boolean;
  /**
   * Host data at or past this offset of the image file is corruption (the optimized engine's
   * runtime check, as QEMU's); Infinity reads past the end as zeros.
   */
  fileEnd: number;
}

/** Classifies the entry at file offset `at`. */
export function classifyL2Entry(e: DecodedL2Entry, ctx: ClassifyContext, at: number): Mapping {
  const g = ctx.geometry;
  const invalid = (reason: string): Mapping => ({ kind: 'invalid', reason, at });
  const external = ctx.externalDataFile;
  if (e.compressed) {
    const d = e.compressed;
    if (external) return invalid('compressed cluster in an image with an external data file');
    if (g.extendedL2 && (e.allocBitmap || e.zeroBitmap)) return invalid('compressed cluster with a subcluster bitmap');
    if (d.beyond2To53) return invalid('compressed data offset beyond 2^53');
    const length = (d.additionalSectors + 1) * 512 - (d.hostOffset % 512);
    if (!hostRangeFits(d.hostOffset, length)) return invalid(`compressed data: ${hostRangeProblem(d.hostOffset, length)}`);
    if (d.hostOffset >= ctx.fileEnd) return invalid(`compressed data at 0x${d.hostOffset.toString(16)} is past the end of the file`);
    return { kind: 'compressed', hostOffset: d.hostOffset, length };
  }
  const offset = e.hostOffset;
  if (offset % g.clusterSize !== 0) {
    return invalid(`host offset 0x${offset.toString(16)} is not cluster aligned (entry at 0x${at.toString(16)})`);
  }
  const hasOffset = offset !== 0 || (external && e.copied);
  if (!hostRangeFits(offset, g.clusterSize)) {
    return invalid(`${hostRangeProblem(offset, g.clusterSize)} (entry at 0x${at.toString(16)})`);
  }
  if (!external && offset >= ctx.fileEnd) {
    return invalid(`host offset 0x${offset.toString(16)} is past the end of the file (entry at 0x${at.toString(16)})`);
  }
  if (g.extendedL2) {
    const alloc = e.allocBitmap >>> 0;
    const zero = e.zeroBitmap >>> 0;
    if ((alloc & zero) !== 0) return invalid('a subcluster is both allocated and zero');
    if (!hasOffset && alloc !== 0) return invalid('allocated subclusters without a host cluster');
    return { kind: 'subclusters', hostOffset: offset, copied: e.copied, alloc, zero };
  }
  if (e.zeroFlag) return { kind: 'zero', hostOffset: offset, copied: e.copied };
  if (!hasOffset) return { kind: 'unallocated' };
  return { kind: 'normal', hostOffset: offset, copied: e.copied };
}

/**
 * The rules QEMU applies only when a guest cluster is looked up to be read or mapped
 * (qcow2_get_host_offset(), which signals corruption and fails the request with EIO), not when an
 * entry is decoded: a version 2 image has no zero flag, and with an external data file a guest
 * cluster's data sits at the same offset of the data file. Returns what is wrong with `m` for the
 * guest cluster at `clusterStart`, or undefined. Writes that overwrite such a cluster whole go on,
 * as in QEMU; copy-on-write reads of it fail.
 */
export function lookupProblem(
  st: { header: { version: number }; features: Pick<Features, 'externalDataFile'> },
  m: Mapping,
  clusterStart: number,
): string | undefined {
  if (m.kind === 'zero' && st.header.version < 3) return 'zero cluster entry found in a version 2 image';
  if (st.features.externalDataFile && (m.kind === 'normal' || m.kind === 'zero' || m.kind === 'subclusters')) {
    const hasHost = m.hostOffset !== 0 || (m.copied && m.kind !== 'zero');
    if (hasHost && m.hostOffset !== clusterStart) {
      return `external data file host offset 0x${m.hostOffset.toString(16)} does not match guest cluster offset 0x${clusterStart.toString(16)}`;
    }
  }
  return undefined;
}

/** `m`, or the invalid mapping lookupProblem() makes of it, naming the entry at file offset `at`. */
export function lookedUp(st: Parameters<typeof lookupProblem>[0], m: Mapping, clusterStart: number, at: number): Mapping {
  const problem = lookupProblem(st, m, clusterStart);
  return problem === undefined ? m : { kind: 'invalid', reason: `${problem} (entry at 0x${at.toString(16)})`, at };
}

/** Encodes `entry` into `table` at byte `at` (an L2 table, a slice of one, or one entry's bytes). */
export function encodeMapping(g: Pick<Geometry, 'clusterBits' | 'extendedL2'>, table: Uint8Array, at: number, entry: NewL2Entry): void {
  const std = (hostOffset: number, zero: boolean) => encodeStandardDescriptor({ hostOffset, zero, reservedLow: 0, reservedHigh: 0 });
  const none = { allocBitmap: 0, zeroBitmap: 0 };
  let fields: L2Entry;
  switch (entry.kind) {
    case 'unallocated':
      fields = { copied: false, compressed: false, descriptorHi: 0, descriptorLo: 0, ...none };
      break;
    case 'normal':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, false), ...none };
      break;
    case 'zero':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, true), ...none };
      break;
    case 'subclusters':
      fields = { copied: entry.copied, compressed: false, ...std(entry.hostOffset, false), allocBitmap: entry.alloc >>> 0, zeroBitmap: entry.zero >>> 0 };
      break;
    case 'compressed': {
      const additionalSectors = Math.ceil(((entry.hostOffset % 512) + entry.length) / 512) - 1;
      const d = encodeCompressedDescriptor({ hostOffset: entry.hostOffset, offsetHighBits: 0, additionalSectors }, g.clusterBits);
      fields = { copied: false, compressed: true, ...d, ...none };
      break;
    }
  }
  encodeL2Entry(view(table), at, fields, g.extendedL2);
}

/**
 * True when the mapping owns a host cluster (of the image file or, with a data file, of that).
 * With a data file, host offset 0 is guest cluster 0, allocated when COPIED is set — except for a
 * zero-flagged entry, which QEMU reads as plain zero (it checks the zero flag first).
 */
export function hasHostCluster(st: { features: Pick<Features, 'externalDataFile'> }, m: Mapping): m is Extract<Mapping, { hostOffset: number; copied: boolean }> {
  if (m.kind !== 'normal' && m.kind !== 'zero' && m.kind !== 'subclusters') return false;
  return m.hostOffset !== 0 || (st.features.externalDataFile && m.copied && m.kind !== 'zero');
}

/** Whether the mapping holds storage of this layer: a host cluster or compressed bytes. */
export function isAllocated(st: { features: Pick<Features, 'externalDataFile'> }, m: Mapping): boolean {
  return m.kind === 'compressed' || hasHostCluster(st, m);
}

/** The entry of a cluster whose every byte was just written at `host`. */
export function fullClusterEntry(g: Pick<Geometry, 'extendedL2'>, host: number): NewL2Entry {
  return g.extendedL2
    ? { kind: 'subclusters', hostOffset: host, copied: true, alloc: 0xffff_ffff, zero: 0 }
    : { kind: 'normal', hostOffset: host, copied: true };
}

/** Bit mask of the subclusters that bytes [from, to) of a cluster touch. */
export function subclusterMask(subclusterSize: number, from: number, to: number): number {
  let mask = 0;
  for (let sc = Math.floor(from / subclusterSize); sc <= Math.floor((to - 1) / subclusterSize); sc++) mask = (mask | (1 << sc)) >>> 0;
  return mask;
}

/** Whether subcluster `sc` is set in `mask`. */
export const hasBit = (mask: number, sc: number): boolean => ((mask >>> sc) & 1) === 1;
