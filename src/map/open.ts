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
import { DurableFile } from '../reference/durable-file.js';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { probeFormat } from '../engine/open.js';
import { RawDevice } from '../engine/raw.js';
import type { BlockDevice, Extent } from '../engine/types.js';
import { unsupported } from '../errors.js';
import type { BlockFile } from '../io/block-file.js';
import { NodeFile } from '../io/node-file.js';
import { readL1Entry } from '../reference/entries.js';
import { mapExtents } from '../reference/extents.js';
import { ReferenceImage } from '../reference/image.js';
import { openReference } from '../reference/open.js';
import { getRefcount } from '../reference/refcounts.js';
import type { RefState } from '../reference/state.js';
import { allocatedBytes, type FileHoles, openFileHoles } from './holes.js';
import { detectMetadataPreallocation } from './prealloc.js';
import { roundUpToSector } from './status.js';
import type { MapLayer } from './types.js';

export interface OpenedMap {
  top: MapLayer;
  close(): Promise<void>;
}

export async function openForMap(path: string, format?: 'raw' | 'qcow2'): Promise<OpenedMap> {
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
    const image = await openReference(path, { readOnly: true });
    device = image;
    return { top: await referenceLayer(image, path, path, track), close };
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

/** The path of a file the reference engine opened (under its durable-write layer), if plain. */
function pathOf(file: DurableFile | undefined): string | undefined {
  return file?.inner instanceof NodeFile ? file.inner.path : undefined;
}

async function referenceLayer(
  image: ReferenceImage,
  realPath: string,
  name: string,
  track: (h: FileHoles) => FileHoles,
): Promise<MapLayer> {
  const st: RefState = { ...image.state, file: new DurableFile(new PageCache(image.state.file)) };
  const files: MapLayer['files'] = { image: { name, holes: track(openFileHoles(realPath)) } };
  if (st.dataFile) {
    const dataPath = pathOf(st.dataFile);
    if (dataPath === undefined) throw unsupported('the data file of the image is not a plain file');
    const stored = st.extensions.find((e) => e.kind === 'data-file');
    const dataName = stored?.kind === 'data-file' ? stored.name : dataPath;
    files['data-file'] = { name: dataName, holes: track(openFileHoles(dataPath)) };
  }
  const metadataPreallocation = await detectMetadataPreallocation({
    fileLength: (await stat(realPath)).size,
    allocatedBytes: allocatedBytes(realPath),
    clusterSize: st.geometry.clusterSize,
    refcount: (i) => getRefcount(st, i),
  });
  let backing: MapLayer | undefined;
  const below = image.backing;
  if (below) {
    const storedName = st.backingName ?? '';
    const shown = pathCombine(name, storedName);
    if (below instanceof ReferenceImage) {
      const belowPath = pathOf(below.state.file);
      if (belowPath === undefined) throw unsupported('the backing image is not a plain file');
      backing = await referenceLayer(below, belowPath, shown, track);
    } else if (below instanceof RawDevice) {
      const belowPath = isAbsolute(storedName) ? storedName : join(dirname(realPath), storedName);
      backing = rawLayer(track(openFileHoles(belowPath)), shown);
    } else {
      throw unsupported('the backing file is opened by an engine that map does not know');
    }
  }
  return {
    format: 'qcow2',
    size: image.virtualSize,
    extents: referenceExtents(st),
    // 64 Ki clusters at a time (1 GiB with 16 KiB clusters and more): bounded memory for small clusters.
    extentWindow: Math.min(1 << 30, st.geometry.clusterSize * 65536),
    files,
    metadataPreallocation,
    backing,
  };
}

/**
 * The reference engine's mapExtents, made fast enough for whole disks: L2 spans whose L1 entry is
 * empty are answered without looking at each cluster (the engine would find every one of them
 * unallocated), and metadata reads go through a page cache.
 */
function referenceExtents(st: RefState): MapLayer['extents'] {
  const span = st.geometry.clusterSize * st.geometry.l2Entries;
  return async (offset, length) => {
    const out: Extent[] = [];
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const index = Math.floor(pos / span);
      const spanEnd = Math.min(end, (index + 1) * span);
      const l2Offset = index < st.header.l1Size ? (await readL1Entry(st, index)).l2Offset : 0;
      if (l2Offset === 0) out.push({ start: pos, length: spanEnd - pos, kind: 'unallocated' });
      else out.push(...(await mapExtents(st, pos, spanEnd - pos)));
      pos = spanEnd;
    }
    return out;
  };
}

/** QEMU's path_combine(): `filename` relative to the directory part of `base` (as typed). */
export function pathCombine(base: string, filename: string): string {
  if (filename.startsWith('/')) return filename;
  const slash = base.lastIndexOf('/');
  return slash < 0 ? filename : base.slice(0, slash + 1) + filename;
}

/**
 * Read-only page cache over a BlockFile (the engine reads metadata a few bytes at a time). Pages are
 * small on purpose: reading more than the metadata QEMU reads makes the kernel read ahead into data
 * clusters, and on ext4 cached pages over unwritten (fallocated, zeroed) extents count as data for
 * SEEK_DATA — with 64 KiB pages, mapping a freshly written image changed what a later `qemu-img map`
 * (and our own answer) saw of its holes.
 */
class PageCache implements BlockFile {
  private static readonly PAGE = 4 * 1024;
  private static readonly MAX_PAGES = 16384;
  private readonly pages = new Map<number, Uint8Array>();

  constructor(private readonly inner: BlockFile) {}

  get readOnly(): boolean {
    return true;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const done = await this.readInto(offset, out);
    return done === length ? out : out.subarray(0, done);
  }

  async readInto(offset: number, target: Uint8Array): Promise<number> {
    const P = PageCache.PAGE;
    const length = target.byteLength;
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const index = Math.floor(at / P);
      const page = await this.page(index);
      const from = at - index * P;
      const n = Math.min(length - done, page.byteLength - from);
      if (n <= 0) break;
      target.set(page.subarray(from, from + n), done);
      done += n;
    }
    return done;
  }

  private async page(index: number): Promise<Uint8Array> {
    let page = this.pages.get(index);
    if (!page) {
      page = await this.inner.read(index * PageCache.PAGE, PageCache.PAGE);
      if (this.pages.size >= PageCache.MAX_PAGES) this.pages.delete(this.pages.keys().next().value as number);
      this.pages.set(index, page);
    }
    return page;
  }

  readonly capabilities = { punchHole: false, zeroRange: false };

  write(): Promise<void> {
    return Promise.reject(unsupported('map opens images read-only'));
  }

  punchHole(): Promise<void> {
    return this.write();
  }

  zeroRange(): Promise<void> {
    return this.write();
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  truncate(): Promise<void> {
    return Promise.reject(unsupported('map opens images read-only'));
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
