/**
 * Block status the way QEMU 7.2 computes it for `qemu-img map`:
 *
 * - fileStatus: file-posix's raw_co_block_status (find_allocation over SEEK_DATA / SEEK_HOLE) under
 *   block/io.c's bdrv_co_block_status (clamping to the node's length, which is the file size rounded
 *   up to 512; EOF flag);
 * - layerStatus: one format layer (qcow2_co_block_status, or the raw format driver that hands the
 *   question to its file), with bdrv_co_block_status's additions: ALLOCATED, ZERO for unallocated
 *   ranges of a layer without backing (or at/after the end of the backing), and the recursion into the
 *   host file for metadata-preallocated images;
 * - blockStatus: qemu-img.c's get_block_status, walking down the backing chain.
 */
import { BLOCK_STATUS_CHUNK_BYTES } from '../limits.js';
import { corrupt } from '../errors.js';
import type { Extent, HoleOracle, MapEntry, MapLayer } from './types.js';

const SECTOR = 512;

export function roundUpToSector(n: number): number {
  return Math.ceil(n / SECTOR) * SECTOR;
}

export interface FileStatus {
  /** Bytes the answer covers from the queried offset (0 only at/after the end of the node). */
  pnum: number;
  data: boolean;
  zero: boolean;
  /** BDRV_BLOCK_EOF: the answer reaches the end of the node. */
  eof: boolean;
}

/** What the host file says about [offset, offset + bytes). */
export function fileStatus(holes: HoleOracle, offset: number, bytes: number): FileStatus {
  const total = roundUpToSector(holes.size);
  if (offset >= total) return { pnum: 0, data: false, zero: false, eof: true };
  const n = Math.min(bytes, total - offset);
  let pnum = n;
  let data = true;
  try {
    const dataAt = holes.seekData(offset);
    if (dataAt === null) {
      data = false; // trailing hole (ENXIO)
    } else if (dataAt > offset) {
      data = false; // in a hole, data again at dataAt
      pnum = dataAt - offset;
    } else if (dataAt === offset) {
      const holeAt = holes.seekHole(offset);
      if (holeAt === null) data = false; // ENXIO: the file shrank under us; QEMU calls it a trailing hole
      else if (holeAt > offset) pnum = holeAt - offset;
      // holeAt <= offset: a hole dug meanwhile (EBUSY) or a bogus answer (EIO): no information, data.
    }
    // dataAt < offset: a bogus answer (EIO): no information, data.
  } catch {
    // Any other lseek failure: no information, so data (QEMU: "pretend there are no holes").
  }
  pnum = Math.min(pnum, n);
  return { pnum, data, zero: !data, eof: offset + pnum === total };
}

/** One layer's answer (the flags of bdrv_co_block_status after its own additions). */
export interface LayerStatus {
  pnum: number;
  data: boolean;
  zero: boolean;
  allocated: boolean;
  offset?: number;
  filename?: string;
}

/**
 * Answers "which extent holds guest offset X" from a layer's mapExtents, fetching a window at a time
 * (qemu-img asks in chunks of at most 1 GiB, and every layer below is asked about increasing offsets).
 */
export class ExtentCursor {
  private extents: Extent[] = [];
  private windowStart = 0;
  private windowEnd = 0;

  private readonly window: number;

  constructor(private readonly layer: Pick<MapLayer, 'extents' | 'size' | 'extentWindow'>) {
    this.window = Math.max(1, layer.extentWindow ?? BLOCK_STATUS_CHUNK_BYTES);
  }

  async at(offset: number): Promise<Extent> {
    if (offset < this.windowStart || offset >= this.windowEnd) {
      const end = Math.min(this.layer.size, offset + this.window);
      this.extents = await this.layer.extents(offset, end - offset);
      this.windowStart = offset;
      this.windowEnd = end;
      checkCoverage(this.extents, offset, end);
    }
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.extents[mid]!.start <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.extents[lo]!;
  }
}

function checkCoverage(extents: readonly Extent[], start: number, end: number): void {
  let pos = start;
  for (const e of extents) {
    if (e.start !== pos || e.length <= 0) break;
    pos += e.length;
  }
  if (pos !== end) {
    throw corrupt(`the layer's map of [0x${start.toString(16)}, 0x${end.toString(16)}) has a gap or overlap at 0x${pos.toString(16)}`);
  }
}

/** Status of a chain: one cursor per layer, so each layer's map is read once per window. */
export class ChainStatus {
  private readonly cursors = new Map<MapLayer, ExtentCursor>();

  constructor(readonly top: MapLayer) {}

  /** qemu-img's get_block_status: the first layer, going down, that says zero or data. */
  async blockStatus(offset: number, bytes: number): Promise<MapEntry> {
    let layer: MapLayer | undefined = this.top;
    let depth = 0;
    let n = bytes;
    let s: LayerStatus;
    for (;;) {
      s = await this.layerStatus(layer, offset, n);
      n = s.pnum;
      if (s.zero || s.data) break;
      layer = layer.backing;
      if (!layer) {
        // A format without backing support that says neither (not reachable with qcow2 and raw).
        s = { pnum: n, data: false, zero: false, allocated: false };
        break;
      }
      depth++;
    }
    const entry: MapEntry = { start: offset, length: n, depth, present: s.allocated, zero: s.zero, data: s.data };
    if (s.offset !== undefined) {
      entry.offset = s.offset;
      if (s.filename !== undefined) entry.filename = s.filename;
    }
    return entry;
  }

  /** bdrv_co_block_status on one layer (offset is inside the layer: callers never go past it). */
  async layerStatus(layer: MapLayer, offset: number, bytes: number): Promise<LayerStatus> {
    if (offset >= layer.size || bytes <= 0) throw new RangeError(`block status at ${offset} (+${bytes}) is outside a layer of ${layer.size} bytes`);
    const n = Math.min(bytes, layer.size - offset);
    if (layer.format === 'raw') {
      // The raw driver answers BDRV_BLOCK_RAW at the same offset: the file's own status is the answer.
      const f = fileStatus(layer.files.image.holes, offset, n);
      return { pnum: f.pnum, data: f.data, zero: f.zero, allocated: true, offset, filename: layer.files.image.name };
    }
    const e = await this.cursor(layer).at(offset);
    let pnum = Math.min(e.start + e.length - offset, n);
    const hostOffset = e.hostOffset === undefined ? undefined : e.hostOffset + (offset - e.start);
    // qcow2_co_block_status: a host offset for data, preallocated zero, and unallocated subclusters
    // of an allocated cluster (not for compressed clusters).
    const offsetValid = hostOffset !== undefined && e.kind !== 'compressed';
    const data = e.kind === 'data' || e.kind === 'compressed';
    let zero = e.kind === 'zero';
    const allocated = data || zero;
    if (!allocated) {
      // bdrv_co_block_status: unallocated reads as zero without a backing file, or past its end.
      if (!layer.backing || offset >= layer.backing.size) zero = true;
    }
    const file = offsetValid ? layer.files[e.file ?? 'image'] : undefined;
    if (offsetValid && !file) throw new RangeError(`a layer extent refers to its ${e.file ?? 'image'} file, which the map was not given`);
    if (layer.metadataPreallocation && data && offsetValid && file) {
      // BDRV_BLOCK_RECURSE: ask the host file; holes (and space past its end) read as zero.
      const f = fileStatus(file.holes, hostOffset, pnum);
      if (f.eof && (f.pnum === 0 || f.zero)) {
        zero = true;
      } else {
        pnum = f.pnum;
        zero ||= f.zero;
      }
    }
    const out: LayerStatus = { pnum, data, zero, allocated };
    if (offsetValid && file) {
      out.offset = hostOffset;
      out.filename = file.name;
    }
    return out;
  }

  private cursor(layer: MapLayer): ExtentCursor {
    let c = this.cursors.get(layer);
    if (!c) {
      c = new ExtentCursor(layer);
      this.cursors.set(layer, c);
    }
    return c;
  }
}
