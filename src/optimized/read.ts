/**
 * The read path. A request is first planned from the L2 entries (one cache lookup per L2 table,
 * entries decoded in a loop), into pieces: host data, zeros, the layer below, compressed clusters.
 * Host pieces that continue each other in both guest and host space are merged, so a run of
 * contiguous clusters costs ONE BlockFile read; then all pieces are read concurrently.
 */
import { decompressItems } from '../compress/codec.js';
import type { CompressionType } from '../compress/index.js';
import { corrupt } from '../errors.js';
import { lookedUp, type Mapping } from '../qcow2/mapping.js';
import { l2IndexOf } from '../qcow2/tables.js';
import { decodeMapping } from './entries.js';
import { l2TableOf } from './l2.js';
import { readDecrypted } from '../qcow2/crypt-data.js';
import type { OptState } from './state.js';

type Piece =
  | { kind: 'host'; pos: number; len: number; host: number }
  | { kind: 'below'; pos: number; len: number }
  | { kind: 'compressed'; pos: number; len: number; inCluster: number; mapping: Extract<Mapping, { kind: 'compressed' }> };

function push(out: Piece[], p: Piece): void {
  const last = out[out.length - 1];
  if (last && last.pos + last.len === p.pos) {
    if (last.kind === 'host' && p.kind === 'host' && last.host + last.len === p.host) {
      last.len += p.len;
      return;
    }
    if (last.kind === 'below' && p.kind === 'below') {
      last.len += p.len;
      return;
    }
  }
  out.push(p);
}

/** Pieces of one cluster's part [inCluster, inCluster + n) that need I/O (zeros need none). */
function clusterPieces(st: OptState, out: Piece[], entry: Mapping, clusterStart: number, inCluster: number, n: number, at: number): void {
  const pos = clusterStart + inCluster;
  const m = lookedUp(st, entry, clusterStart, at);
  switch (m.kind) {
    case 'unallocated':
      return push(out, { kind: 'below', pos, len: n });
    case 'zero':
      return;
    case 'normal':
      return push(out, { kind: 'host', pos, len: n, host: m.hostOffset + inCluster });
    case 'compressed':
      return push(out, { kind: 'compressed', pos, len: n, inCluster, mapping: m });
    case 'subclusters': {
      const S = st.geometry.subclusterSize;
      let at = inCluster;
      while (at < inCluster + n) {
        const sc = Math.floor(at / S);
        const take = Math.min((sc + 1) * S, inCluster + n) - at;
        if ((m.alloc >>> sc) & 1) push(out, { kind: 'host', pos: clusterStart + at, len: take, host: m.hostOffset + at });
        else if (!((m.zero >>> sc) & 1)) push(out, { kind: 'below', pos: clusterStart + at, len: take });
        at += take;
      }
      return;
    }
    case 'invalid':
      throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${m.reason}`, m.at === undefined ? {} : { offset: m.at });
  }
}

/** Plans a read of [offset, offset + length). */
export async function planRead(st: OptState, offset: number, length: number): Promise<Piece[]> {
  const g = st.geometry;
  const C = g.clusterSize;
  const l1Span = C * g.l2Entries;
  const out: Piece[] = [];
  const end = offset + length;
  let pos = offset;
  while (pos < end) {
    const spanEnd = Math.min(end, pos - (pos % l1Span) + l1Span);
    const l2 = l1IndexOfSafe(st, pos) ? l2TableOf(st, pos) : 0;
    if (l2 === 0) {
      push(out, { kind: 'below', pos, len: spanEnd - pos });
      pos = spanEnd;
      continue;
    }
    const E = g.l2EntryBytes;
    const perSlice = st.l2Cache.sliceBytes / E;
    while (pos < spanEnd) {
      // The entries of one slice, decoded while the cache lends it.
      const index = l2IndexOf(st, pos - (pos % C));
      const sliceEnd = Math.min(spanEnd, pos - (pos % l1Span) + (index - (index % perSlice) + perSlice) * C);
      await st.l2Cache.useSlice(l2, index * E, (bytes, at, key) => {
        const first = index - at / E;
        while (pos < sliceEnd) {
          const clusterStart = pos - (pos % C);
          const n = Math.min(clusterStart + C, sliceEnd) - pos;
          const i = l2IndexOf(st, clusterStart) - first;
          const m = decodeMapping(st, bytes, i, key);
          clusterPieces(st, out, m, clusterStart, pos - clusterStart, n, key + i * E);
          pos += n;
        }
      });
    }
  }
  return out;
}

function l1IndexOfSafe(st: OptState, guestOffset: number): boolean {
  return Math.floor(guestOffset / st.geometry.clusterSize / st.geometry.l2Entries) < st.header.l1Size;
}

export async function readGuest(st: OptState, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await readGuestInto(st, offset, out);
  return out;
}

/**
 * Reads guest [offset, offset + target.byteLength) straight into `target`: host runs are read by
 * the file into their place, so a large request costs no allocation and no extra copy.
 */
export async function readGuestInto(st: OptState, offset: number, target: Uint8Array): Promise<void> {
  const pieces = await planRead(st, offset, target.byteLength);
  fillGaps(pieces, offset, target);
  const work: Promise<void>[] = [];
  const compressed: CompressedPiece[] = [];
  for (const p of pieces) {
    if (p.kind === 'compressed') compressed.push(p);
    else work.push(readPiece(st, p, target.subarray(p.pos - offset, p.pos - offset + p.len)));
  }
  if (compressed.length === 1) work.push(readPiece(st, compressed[0] as CompressedPiece, target.subarray((compressed[0] as CompressedPiece).pos - offset)));
  else if (compressed.length > 1) for (const batch of batchesOf(st, compressed)) work.push(readBatch(st, batch, offset, target));
  await Promise.all(work);
}

type CompressedPiece = Extract<Piece, { kind: 'compressed' }>;

/** Host bytes between two packed compressed clusters still read as one run (rather than two reads). */
const MAX_BATCH_GAP = 64 * 1024;

/**
 * Splits a request's compressed clusters into batches for the codec: about one per worker, each
 * a run whose host data can be read with one call (packed clusters follow each other on disk).
 */
function batchesOf(st: OptState, pieces: CompressedPiece[]): CompressedPiece[][] {
  const per = Math.max(1, Math.ceil(pieces.length / st.codec.parallelism));
  const out: CompressedPiece[][] = [];
  let cur: CompressedPiece[] = [];
  let start = 0;
  let end = 0;
  for (const p of pieces) {
    const h = p.mapping.hostOffset;
    const fits = cur.length > 0 && cur.length < per && h >= start && h <= end + MAX_BATCH_GAP;
    if (!fits && cur.length > 0) {
      out.push(cur);
      cur = [];
    }
    if (cur.length === 0) start = end = h;
    cur.push(p);
    end = Math.max(end, h + p.mapping.length);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** One read of the batch's host span, one codec call, then each cluster's part into place. */
async function readBatch(st: OptState, batch: CompressedPiece[], base: number, target: Uint8Array): Promise<void> {
  const C = st.geometry.clusterSize;
  const start = Math.min(...batch.map((p) => p.mapping.hostOffset));
  const end = Math.max(...batch.map((p) => p.mapping.hostOffset + p.mapping.length));
  const input = st.codec.buffer(end - start);
  const got = await st.file.inner.readInto(start, input);
  // Past the end of the file an item is shorter, exactly as a read of it alone would be.
  const items = batch.map((p) => {
    const at = p.mapping.hostOffset - start;
    return { at, length: Math.max(0, Math.min(p.mapping.length, got - at)), hostOffset: p.mapping.hostOffset };
  });
  const clusters = await decompressItems(st.codec, compressionOf(st), C, input, items);
  batch.forEach((p, i) => {
    target.set(clusters.subarray(i * C + p.inCluster, i * C + p.inCluster + p.len), p.pos - base);
  });
  st.codec.recycle(clusters);
}

function compressionOf(st: OptState): CompressionType {
  return st.header.compressionType === 1 ? 1 : 0;
}

/** Zeros where no piece will write (zero clusters and subclusters need no I/O). */
function fillGaps(pieces: Piece[], base: number, target: Uint8Array): void {
  let at = 0;
  for (const p of pieces) {
    const from = p.pos - base;
    if (from > at) target.fill(0, at, from);
    at = from + p.len;
  }
  if (at < target.byteLength) target.fill(0, at);
}

async function readPiece(st: OptState, p: Piece, into: Uint8Array): Promise<void> {
  if (p.kind === 'host') return readHostInto(st, p.host, into, p.pos);
  if (p.kind === 'below') return readBelowInto(st, p.pos, into);
  const cluster = await readCompressed(st, p.mapping);
  into.set(cluster.subarray(p.inCluster, p.inCluster + p.len));
}

/** Reads `n` bytes at `inCluster` of one guest cluster as `m` says (copy-on-write sources). */
export async function readInCluster(st: OptState, m: Mapping, clusterStart: number, inCluster: number, n: number): Promise<Uint8Array> {
  const pieces: Piece[] = [];
  const at = l2TableOf(st, clusterStart) + l2IndexOf(st, clusterStart) * st.geometry.l2EntryBytes;
  clusterPieces(st, pieces, m, clusterStart, inCluster, n, at);
  const out = new Uint8Array(n);
  const base = clusterStart + inCluster;
  for (const p of pieces) await readPiece(st, p, out.subarray(p.pos - base, p.pos - base + p.len));
  return out;
}

/**
 * Host bytes into `into`; past the end of the file they read as zeros. Reads need no ordering:
 * they go to the file under the barrier layer directly.
 */
async function readHostInto(st: OptState, hostOffset: number, into: Uint8Array, guestOffset: number): Promise<void> {
  const file = (st.dataFile ?? st.file).inner;
  const plain = async (at: number, target: Uint8Array): Promise<void> => {
    const got = await file.readInto(at, target);
    if (got < target.byteLength) target.fill(0, got);
  };
  if (st.crypto === undefined) return plain(hostOffset, into);
  return readDecrypted(st.crypto, hostOffset, into, plain, guestOffset);
}

/** The layer below (the backing file, zeros past its end or without one) into `into`. */
async function readBelowInto(st: OptState, guestOffset: number, into: Uint8Array): Promise<void> {
  const backing = st.backing;
  const n = !backing || guestOffset >= backing.virtualSize ? 0 : Math.min(into.byteLength, backing.virtualSize - guestOffset);
  if (n > 0) await (backing as NonNullable<typeof backing>).readInto(guestOffset, into.subarray(0, n));
  if (n < into.byteLength) into.fill(0, n);
}

export async function readBelow(st: OptState, guestOffset: number, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  await readBelowInto(st, guestOffset, out);
  return out;
}

/** One compressed cluster, whole (through the codec, so off this thread when it is a pool). */
export async function readCompressed(st: OptState, m: Extract<Mapping, { kind: 'compressed' }>): Promise<Uint8Array> {
  const input = await st.file.inner.read(m.hostOffset, m.length);
  const item = { at: 0, length: input.byteLength, hostOffset: m.hostOffset };
  return decompressItems(st.codec, compressionOf(st), st.geometry.clusterSize, input, [item]);
}
