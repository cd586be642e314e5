/** Compressed writes (qemu-io `write -c`), as the reference engine: whole clusters, never over storage. */
import { compressCluster } from '../compress/index.js';
import { unsupported, usage } from '../errors.js';
import { hasHostCluster } from './entries.js';
import { l2IndexOf, mappingOf, setEntry, writableL2 } from './l2.js';
import { allocateClusters } from './refcounts.js';
import type { OptState } from './state.js';
import { writeGuest } from './write.js';

/** The metadata mutex and the range lock are held. */
export async function writeCompressed(st: OptState, offset: number, data: Uint8Array): Promise<void> {
  const C = st.geometry.clusterSize;
  if (st.features.externalDataFile) throw unsupported('compressed writes are not possible with an external data file');
  const end = offset + data.byteLength;
  if (offset % C !== 0 || (data.byteLength % C !== 0 && end !== st.geometry.virtualSize)) {
    throw usage('compressed writes must cover whole clusters (or end at the end of the disk)');
  }
  for (let pos = offset; pos < end; pos += C) {
    const cluster = new Uint8Array(C);
    cluster.set(data.subarray(pos - offset, Math.min(pos - offset + C, data.byteLength)));
    await writeOne(st, pos, cluster, Math.min(C, end - pos));
  }
  await st.order.trim();
}

async function writeOne(st: OptState, clusterStart: number, cluster: Uint8Array, guestBytes: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const l2 = await writableL2(st, clusterStart);
  const { mapping } = await mappingOf(st, clusterStart);
  if (mapping.kind === 'compressed' || hasHostCluster(st, mapping)) {
    throw unsupported(`guest cluster 0x${clusterStart.toString(16)} is already allocated: compressed writes cannot overwrite it`);
  }
  const packed = compressCluster(st.header.compressionType === 1 ? 1 : 0, cluster);
  if (!packed) {
    await writeGuest(st, clusterStart, cluster.subarray(0, guestBytes), true);
    return;
  }
  const host = await allocateClusters(st, Math.ceil(packed.byteLength / C));
  await st.file.write(host, packed, 'data');
  await setEntry(st, l2, l2IndexOf(st, clusterStart), { kind: 'compressed', hostOffset: host, length: packed.byteLength });
}
