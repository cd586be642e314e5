/**
 * Compressed writes (qemu-io `write -c`), on the calling thread: each cluster that compresses gets
 * host clusters of its own; one that does not is written normally.
 */
import { compressCluster } from '../compress/index.js';
import { allocateClusters } from '../qcow2/refcounts.js';
import { l2IndexOf, validMapping, writableL2 } from '../qcow2/tables.js';
import { checkCompressedWrite, refuseAllocated } from '../qcow2/write-rules.js';
import { readL2Entry, writeL2Entry } from './entries.js';
import type { RefState } from './state.js';
import { writeGuest } from './write.js';

export async function writeCompressed(st: RefState, offset: number, data: Uint8Array): Promise<void> {
  const C = st.geometry.clusterSize;
  checkCompressedWrite(st, offset, data.byteLength);
  const end = offset + data.byteLength;
  for (let pos = offset; pos < end; pos += C) {
    const cluster = new Uint8Array(C);
    cluster.set(data.subarray(pos - offset, Math.min(pos - offset + C, data.byteLength)));
    await writeOneCompressed(st, pos, cluster, Math.min(C, end - pos));
  }
}

async function writeOneCompressed(st: RefState, clusterStart: number, cluster: Uint8Array, guestBytes: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const l2 = await writableL2(st, clusterStart);
  const index = l2IndexOf(st, clusterStart);
  refuseAllocated(st, validMapping(await readL2Entry(st, l2, index), clusterStart, l2 + index * st.geometry.l2EntryBytes), clusterStart);
  const packed = compressCluster(st.header.compressionType === 1 ? 1 : 0, cluster);
  if (!packed) {
    await writeGuest(st, clusterStart, cluster.subarray(0, guestBytes));
    return;
  }
  const host = await allocateClusters(st, Math.ceil(packed.byteLength / C));
  await st.file.write(host, packed, 'data');
  await writeL2Entry(st, l2, index, { kind: 'compressed', hostOffset: host, length: packed.byteLength });
}
