/**
 * What `qemu-img measure` reads of a source image: its size, the target clusters its data touches
 * (block status over the whole backing chain, as bdrv_block_status_above with no base), and its
 * persistent bitmaps (qcow2 v3 only: bdrv_supports_persistent_dirty_bitmap).
 */
import { countDataClusters, type MeasureSource } from '../create/measure.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { ChainStatus } from './status.js';
import type { MapLayer } from './types.js';

/** The source at `path` (opened with openForMap, as `top`); `clusterSize` is the target's. */
export async function measureSource(top: MapLayer, path: string, clusterSize: number): Promise<MeasureSource> {
  const chain = new ChainStatus(top);
  const dataBytes = await countDataClusters(top.size, clusterSize, async (offset, bytes) => {
    const e = await chain.blockStatus(offset, bytes);
    return { pnum: e.length, zero: e.zero, data: e.data };
  });
  return { size: BigInt(top.size), dataBytes, bitmaps: top.format === 'qcow2' ? await persistentBitmaps(path) : undefined };
}

async function persistentBitmaps(path: string): Promise<MeasureSource['bitmaps']> {
  const file = await NodeFile.open(path, { readOnly: true });
  try {
    const meta = await readMetadata(file);
    if (meta.header.version < 3) return undefined;
    return meta.bitmaps.map((b) => ({ name: b.name, granularityBits: b.granularityBits }));
  } finally {
    await file.close();
  }
}
