/**
 * What `qcow2 map` works on: a chain of layers (the image, then its backing files), each able to
 * say how it maps a guest range (BlockDevice.mapExtents), plus, for the files that host offsets point
 * into, a "hole oracle" (lseek SEEK_DATA / SEEK_HOLE) — QEMU asks the host file system for holes in
 * some cases, and its answers show in `qemu-img map`.
 */
import type { BlockDevice, Extent } from '../engine/types.js';

/**
 * The file system's view of one host file, as lseek(2) gives it. Unit tests fake it.
 * `seekData`/`seekHole` return null where lseek fails with ENXIO (a trailing hole, or at/after the
 * end of the file); any other failure throws (QEMU then pretends the range is data).
 */
export interface HoleOracle {
  /** The file's length in bytes (st_size). */
  readonly size: number;
  /** The first data byte at or after `offset` (SEEK_DATA). */
  seekData(offset: number): number | null;
  /** The first hole byte at or after `offset`; end of file counts as a hole (SEEK_HOLE). */
  seekHole(offset: number): number | null;
}

/** A host file of a layer: its name as qemu-img prints it in the human table, and its holes. */
export interface MapFile {
  name: string;
  holes: HoleOracle;
}

/** One layer of the chain, top first. */
export interface MapLayer {
  format: 'qcow2' | 'raw';
  /** Guest size of the layer (bdrv_getlength: a raw file's size rounded up to 512). */
  readonly size: number;
  /**
   * This layer's extents over [offset, offset + length) (no backing), in order and without gaps —
   * BlockDevice.mapExtents. Not used for raw layers, whose map is the file's own.
   */
  extents: BlockDevice['mapExtents'];
  /** How many guest bytes of extents to ask for at a time (default 1 GiB, qemu-img's chunk). */
  extentWindow?: number;
  /** The files an extent's `file` refers to (a raw layer has only `image`). */
  files: { image: MapFile; 'data-file'?: MapFile };
  /**
   * qcow2 only: QEMU's metadata-preallocation heuristic fired for this image, so QEMU refines each
   * data extent with the holes of the file it lives in (BDRV_BLOCK_RECURSE).
   */
  metadataPreallocation: boolean;
  backing: MapLayer | undefined;
}

/** One entry of `qemu-img map` (QEMU's MapEntry). */
export interface MapEntry {
  start: number;
  length: number;
  /** How many layers down the range's status was found. */
  depth: number;
  /** BDRV_BLOCK_ALLOCATED: the layer at `depth` itself says what the range holds. */
  present: boolean;
  zero: boolean;
  data: boolean;
  /** Host offset, when valid (BDRV_BLOCK_OFFSET_VALID). */
  offset?: number;
  /** Name of the host file `offset` is in (qemu-img prints it only in the human table). */
  filename?: string;
}

export type { Extent };
