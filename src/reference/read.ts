/** The reference read path: one cluster (or subcluster run) at a time. */
import { decompressCluster } from '../compress/index.js';
import { corrupt } from '../errors.js';
import { hasBit, lookupProblem, type Mapping } from '../qcow2/mapping.js';
import { l1Span, l2IndexOf, l2TableFor, mappingOf } from '../qcow2/tables.js';
import { readDecrypted } from '../qcow2/crypt-data.js';
import type { RefState } from './state.js';

export async function readGuest(st: RefState, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const C = st.geometry.clusterSize;
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const clusterStart = pos - (pos % C);
    const located = await mappingOf(st, clusterStart);
    if (located.l2 === 0) {
      // No L2 table: the whole L1 entry's range reads from below, in one go.
      const span = l1Span(st);
      const n = Math.min(clusterStart + span - (clusterStart % span), end) - pos;
      out.set(await readBelow(st, pos, n), pos - offset);
      pos += n;
      continue;
    }
    const n = Math.min(clusterStart + C, end) - pos;
    out.set(await readInCluster(st, located.mapping, clusterStart, pos - clusterStart, n), pos - offset);
    pos += n;
  }
  return out;
}

/** Reads `n` bytes at `inCluster` of the guest cluster at `clusterStart`, as `mapping` says. */
export async function readInCluster(st: RefState, mapping: Mapping, clusterStart: number, inCluster: number, n: number): Promise<Uint8Array> {
  const problem = lookupProblem(st, mapping, clusterStart);
  if (problem !== undefined) {
    const at = (await l2TableFor(st, clusterStart)) + l2IndexOf(st, clusterStart) * st.geometry.l2EntryBytes;
    throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${problem} (entry at 0x${at.toString(16)})`, { offset: at });
  }
  switch (mapping.kind) {
    case 'unallocated':
      return readBelow(st, clusterStart + inCluster, n);
    case 'zero':
      return new Uint8Array(n);
    case 'normal':
      return readHost(st, mapping.hostOffset + inCluster, n, clusterStart + inCluster);
    case 'compressed':
      return (await readCompressed(st, mapping)).subarray(inCluster, inCluster + n);
    case 'subclusters':
      return readSubclusters(st, mapping, clusterStart, inCluster, n);
    case 'invalid':
      throw corrupt(mapping.reason, mapping.at === undefined ? {} : { offset: mapping.at });
  }
}

async function readSubclusters(
  st: RefState,
  m: Extract<Mapping, { kind: 'subclusters' }>,
  clusterStart: number,
  inCluster: number,
  n: number,
): Promise<Uint8Array> {
  const S = st.geometry.subclusterSize;
  const out = new Uint8Array(n);
  let pos = inCluster;
  while (pos < inCluster + n) {
    const sc = Math.floor(pos / S);
    const take = Math.min((sc + 1) * S, inCluster + n) - pos;
    let piece: Uint8Array;
    if (hasBit(m.alloc, sc)) piece = await readHost(st, m.hostOffset + pos, take, clusterStart + pos);
    else if (hasBit(m.zero, sc)) piece = new Uint8Array(take);
    else piece = await readBelow(st, clusterStart + pos, take);
    out.set(piece, pos - inCluster);
    pos += take;
  }
  return out;
}

/** Bytes of this image's own storage for guest data: the data file, or the image file. */
export async function readHost(st: RefState, hostOffset: number, n: number, guestOffset = hostOffset): Promise<Uint8Array> {
  const file = st.dataFile ?? st.file;
  const plain = async (at: number, count: number): Promise<Uint8Array> => {
    const got = await file.read(at, count);
    if (got.byteLength === count) return got;
    const out = new Uint8Array(count); // past the end of the file reads as zeros
    out.set(got);
    return out;
  };
  if (st.crypto === undefined) return plain(hostOffset, n);
  const out = new Uint8Array(n);
  await readDecrypted(st.crypto, hostOffset, out, async (at, into) => into.set(await plain(at, into.byteLength)), guestOffset);
  return out;
}

/** What lies under an unallocated range: the backing file (zeros past its end), or zeros. */
export async function readBelow(st: RefState, guestOffset: number, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  const backing = st.backing;
  if (!backing || guestOffset >= backing.virtualSize) return out;
  out.set(await backing.read(guestOffset, Math.min(n, backing.virtualSize - guestOffset)));
  return out;
}

export async function readCompressed(st: RefState, m: Extract<Mapping, { kind: 'compressed' }>): Promise<Uint8Array> {
  const input = await st.file.read(m.hostOffset, m.length);
  return decompressCluster(st.header.compressionType === 1 ? 1 : 0, input, st.geometry.clusterSize, m.hostOffset);
}
