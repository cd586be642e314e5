/**
 * Compressed writes (qemu-io `write -c`): whole clusters only (or the last, partial cluster of the
 * disk), never over a cluster that already has host storage — QEMU refuses that too. A cluster that
 * does not compress is written normally. Each compressed cluster gets clusters of its own.
 */
import { compressCluster } from '../compress/index.js';
import { unsupported, usage } from '../errors.js';
import { readL2Entry, writeL2Entry } from './entries.js';
import { l2EntryAt, l2IndexOf, writableL2 } from './l2-table.js';
import { allocateClusters } from './refcounts.js';
import { hasHostCluster } from './release.js';
import type { RefState } from './state.js';
import { writeGuest } from './write.js';

export async function writeCompressed(st: RefState, offset: number, data: Uint8Array): Promise<void> {
  const C = st.geometry.clusterSize;
  if (st.features.externalDataFile) throw unsupported('compressed writes are not possible with an external data file');
  const end = offset + data.byteLength;
  if (offset % C !== 0 || (data.byteLength % C !== 0 && end !== st.geometry.virtualSize)) {
    throw usage('compressed writes must cover whole clusters (or end at the end of the disk)');
  }
  for (let pos = offset; pos < end; pos += C) {
    const cluster = new Uint8Array(C);
    cluster.set(data.subarray(pos - offset, Math.min(pos - offset + C, data.byteLength)));
    await writeOneCompressed(st, pos, cluster, Math.min(C, end - pos));
  }
}

async function writeOneCompressed(st: RefState, clusterStart: number, cluster: Uint8Array, guestBytes: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const l2 = await writableL2(st, clusterStart);
  const { mapping } = await readL2Entry(st, l2, l2IndexOf(st, clusterStart));
  if (mapping.kind === 'compressed' || hasHostCluster(st, mapping)) {
    throw unsupported(`guest cluster 0x${clusterStart.toString(16)} is already allocated: compressed writes cannot overwrite it`);
  }
  const packed = compressCluster(st.header.compressionType === 1 ? 1 : 0, cluster);
  if (!packed) {
    await writeGuest(st, clusterStart, cluster.subarray(0, guestBytes));
    return;
  }
  const host = await allocateClusters(st, Math.ceil(packed.byteLength / C));
  await st.file.write(host, packed, 'data');
  await writeL2Entry(st, l2EntryAt(st, l2, clusterStart), { kind: 'compressed', hostOffset: host, length: packed.byteLength });
}
