/**
 * Compressed writes (qemu-io `write -c`, convert -c), as the reference engine: whole clusters,
 * never over storage. The work is split in two so the expensive part runs outside every lock:
 * prepareCompressed() deflates through the codec (worker threads), then writeCompressedClusters()
 * allocates (packed, as QEMU does) and links them under the range lock and the metadata mutex.
 */
import { compressClusters } from '../compress/codec.js';
import { unsupported, usage } from '../errors.js';
import { hasHostCluster } from './entries.js';
import { l2IndexOf, mappingOf, setEntry, writableL2 } from './l2.js';
import { allocateBytes } from './refcounts.js';
import type { OptState } from './state.js';
import { writeGuest } from './write.js';

export interface PreparedCluster {
  /** Guest offset of the cluster. */
  pos: number;
  /** The whole cluster, zero-padded past the end of the disk. */
  cluster: Uint8Array;
  /** Guest bytes of it inside the disk. */
  guestBytes: number;
  /** Its compressed form, or undefined when QEMU would store it as a normal cluster. */
  packed: Uint8Array | undefined;
}

/** Checks the request and compresses its clusters (no lock needed: it reads only `data`). */
export async function prepareCompressed(st: OptState, offset: number, data: Uint8Array): Promise<PreparedCluster[]> {
  const C = st.geometry.clusterSize;
  if (st.features.externalDataFile) throw unsupported('compressed writes are not possible with an external data file');
  const end = offset + data.byteLength;
  if (offset % C !== 0 || (data.byteLength % C !== 0 && end !== st.geometry.virtualSize)) {
    throw usage('compressed writes must cover whole clusters (or end at the end of the disk)');
  }
  let whole = data;
  if (data.byteLength % C !== 0) {
    whole = new Uint8Array(Math.ceil(data.byteLength / C) * C);
    whole.set(data);
  }
  const packed = await compressClusters(st.codec, st.header.compressionType === 1 ? 1 : 0, C, whole);
  return packed.map((p, i) => ({
    pos: offset + i * C,
    cluster: whole.subarray(i * C, (i + 1) * C),
    guestBytes: Math.min(C, end - (offset + i * C)),
    packed: p,
  }));
}

/** The metadata mutex and the range lock are held. */
export async function writeCompressedClusters(st: OptState, clusters: PreparedCluster[]): Promise<void> {
  for (const c of clusters) await writeOne(st, c);
  await st.order.trim();
}

async function writeOne(st: OptState, c: PreparedCluster): Promise<void> {
  const l2 = await writableL2(st, c.pos);
  const { mapping } = await mappingOf(st, c.pos);
  if (mapping.kind === 'compressed' || hasHostCluster(st, mapping)) {
    throw unsupported(`guest cluster 0x${c.pos.toString(16)} is already allocated: compressed writes cannot overwrite it`);
  }
  if (!c.packed) {
    await writeGuest(st, c.pos, c.cluster.subarray(0, c.guestBytes), true);
    return;
  }
  const host = await allocateBytes(st, c.packed.byteLength);
  await st.file.write(host, c.packed, 'data');
  await setEntry(st, l2, l2IndexOf(st, c.pos), { kind: 'compressed', hostOffset: host, length: c.packed.byteLength });
}
