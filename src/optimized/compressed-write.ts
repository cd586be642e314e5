/**
 * Compressed writes (qemu-io `write -c`, convert -c), by the shared rules (src/qcow2/write-rules.ts).
 * The work is split in two so the expensive part runs outside every lock: prepareCompressed() deflates through the codec (worker threads), then writeCompressedClusters()
 * allocates (packed, as QEMU does) and links them under the range lock and the metadata mutex.
 */
import { compressClusters } from '../compress/codec.js';
import { l2IndexOf, writableL2 } from '../qcow2/tables.js';
import { checkCompressedWrite, refuseAllocated } from '../qcow2/write-rules.js';
import { mappingOf, setEntry } from './l2.js';
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
  checkCompressedWrite(st, offset, data.byteLength);
  const end = offset + data.byteLength;
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
  refuseAllocated(st, (await mappingOf(st, c.pos)).mapping, c.pos);
  if (!c.packed) {
    await writeGuest(st, c.pos, c.cluster.subarray(0, c.guestBytes), true);
    return;
  }
  const host = await allocateBytes(st, c.packed.byteLength);
  await st.file.write(host, c.packed, 'data');
  await setEntry(st, l2, l2IndexOf(st, c.pos), { kind: 'compressed', hostOffset: host, length: c.packed.byteLength });
}
