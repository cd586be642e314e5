/**
 * Opening an image and its backing chain for `qcow2 map`: each layer becomes a MapLayer with its
 * extents (from the engine), the hole oracles of its files, the names qemu-img would print for them,
 * and QEMU's metadata-preallocation guess.
 *
 * File names are the ones qemu-img prints: the image as given; a backing file as QEMU's path_combine
 * makes it (the image's directory prefix, as typed, then the stored name); a data file as stored in
 * the header (QEMU 7.2 opens it relative to its working directory; we open it relative to the image,
 * as the engine does).
 */
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { type ImageKeys, openQcow2, probeFormat } from '../device/open.js';
import { type BlockDevice, isQcow2, type Qcow2Device, type SnapshotRef } from '../engine/types.js';
import { unsupported } from '../errors.js';
import { BLOCK_STATUS_CHUNK_BYTES, BLOCK_STATUS_CHUNK_CLUSTERS } from '../limits.js';
import { allocatedBytes, type FileHoles, openFileHoles } from './holes.js';
import { detectMetadataPreallocation } from './prealloc.js';
import { roundUpToSector } from './status.js';
import type { MapLayer } from './types.js';

export interface OpenedMap {
  top: MapLayer;
  close(): Promise<void>;
}

/** `snapshot`: the image as it was at that internal snapshot (qcow2 only; measure -l). */
export async function openForMap(path: string, format?: 'raw' | 'qcow2', keys: ImageKeys = {}, snapshot?: SnapshotRef): Promise<OpenedMap> {
  const fmt = format ?? (await probeFormat(path));
  const holes: FileHoles[] = [];
  const track = (h: FileHoles): FileHoles => (holes.push(h), h);
  let device: BlockDevice | undefined;
  const close = async () => {
    for (const h of holes) h.close();
    await device?.close();
  };
  try {
    if (fmt === 'raw') return { top: rawLayer(track(openFileHoles(path)), path), close };
    const image = await openQcow2(path, { readOnly: true, ...keys, ...(snapshot === undefined ? {} : { snapshot }) });
    device = image;
    return { top: await qcow2Layer(image, path, track), close };
  } catch (err) {
    await close();
    throw err;
  }
}

function rawLayer(holes: FileHoles, name: string): MapLayer {
  return {
    format: 'raw',
    size: roundUpToSector(holes.size),
    extents: async (offset, length) => (length === 0 ? [] : [{ start: offset, length, kind: 'data', hostOffset: offset, file: 'image' }]),
    files: { image: { name, holes } },
    metadataPreallocation: false,
    backing: undefined,
  };
}

async function qcow2Layer(image: Qcow2Device, name: string, track: (h: FileHoles) => FileHoles): Promise<MapLayer> {
  const realPath = image.path;
  if (realPath === undefined) throw unsupported('the image is not a plain file');
  const files: MapLayer['files'] = { image: { name, holes: track(openFileHoles(realPath)) } };
  const dataFile = image.dataFile;
  if (dataFile) {
    if (dataFile.path === undefined) throw unsupported('the data file of the image is not a plain file');
    files['data-file'] = { name: dataFile.name, holes: track(openFileHoles(dataFile.path)) };
  }
  const metadataPreallocation = await detectMetadataPreallocation({
    fileLength: (await stat(realPath)).size,
    allocatedBytes: allocatedBytes(realPath),
    clusterSize: image.clusterSize,
    refcount: (i) => image.hostRefcount(i),
  });
  return {
    format: 'qcow2',
    size: image.virtualSize,
    // QEMU's qcow2 block status gives no host offset on an encrypted image (no OFFSET_VALID with crypto).
    extents: image.encrypted
      ? async (offset, length) => (await image.mapExtents(offset, length)).map(({ hostOffset: _h, file: _f, ...e }) => e)
      : (offset, length) => image.mapExtents(offset, length),
    // Bounded memory for small clusters: at most so many clusters at a time.
    extentWindow: Math.min(BLOCK_STATUS_CHUNK_BYTES, image.clusterSize * BLOCK_STATUS_CHUNK_CLUSTERS),
    files,
    metadataPreallocation,
    backing: await backingLayer(image, realPath, name, track),
  };
}

/** The layer below, named as qemu-img names it (path_combine of the image's name and the stored name). */
async function backingLayer(image: Qcow2Device, realPath: string, name: string, track: (h: FileHoles) => FileHoles): Promise<MapLayer | undefined> {
  const below: BlockDevice | undefined = image.backing;
  if (!below) return undefined;
  const storedName = image.backingName ?? '';
  const shown = pathCombine(name, storedName);
  if (isQcow2(below)) return qcow2Layer(below, shown, track);
  const belowPath = isAbsolute(storedName) ? storedName : join(dirname(realPath), storedName);
  return rawLayer(track(openFileHoles(belowPath)), shown);
}

/** QEMU's path_combine(): `filename` relative to the directory part of `base` (as typed). */
export function pathCombine(base: string, filename: string): string {
  if (filename.startsWith('/')) return filename;
  const slash = base.lastIndexOf('/');
  return slash < 0 ? filename : base.slice(0, slash + 1) + filename;
}
