/**
 * The read path. A request is first planned from the L2 entries (one cache lookup per L2 table,
 * entries decoded in a loop), into pieces: host data, zeros, the layer below, compressed clusters.
 * Host pieces that continue each other in both guest and host space are merged, so a run of
 * contiguous clusters costs ONE BlockFile read; then all pieces are read concurrently.
 */
import { decompressCluster } from '../compress/index.js';
import { corrupt } from '../errors.js';
import { decodeMapping, type Mapping } from './entries.js';
import { l2IndexOf, l2TableOf } from './l2.js';
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
function clusterPieces(st: OptState, out: Piece[], m: Mapping, clusterStart: number, inCluster: number, n: number): void {
  const pos = clusterStart + inCluster;
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
      throw corrupt(`L2 entry for guest offset 0x${clusterStart.toString(16)}: ${m.reason}`);
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
    const table = await st.l2Cache.get(l2);
    while (pos < spanEnd) {
      const clusterStart = pos - (pos % C);
      const n = Math.min(clusterStart + C, spanEnd) - pos;
      const m = decodeMapping(st, table, l2IndexOf(st, clusterStart), l2);
      clusterPieces(st, out, m, clusterStart, pos - clusterStart, n);
      pos += n;
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
  await Promise.all(pieces.map((p) => readPiece(st, p, target.subarray(p.pos - offset, p.pos - offset + p.len))));
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
  if (p.kind === 'host') return readHostInto(st, p.host, into);
  if (p.kind === 'below') return readBelowInto(st, p.pos, into);
  into.set((await readCompressed(st, p.mapping)).subarray(p.inCluster, p.inCluster + p.len));
}

/** Reads `n` bytes at `inCluster` of one guest cluster as `m` says (copy-on-write sources). */
export async function readInCluster(st: OptState, m: Mapping, clusterStart: number, inCluster: number, n: number): Promise<Uint8Array> {
  const pieces: Piece[] = [];
  clusterPieces(st, pieces, m, clusterStart, inCluster, n);
  const out = new Uint8Array(n);
  const base = clusterStart + inCluster;
  for (const p of pieces) await readPiece(st, p, out.subarray(p.pos - base, p.pos - base + p.len));
  return out;
}

/** Host bytes into `into`; past the end of the file they read as zeros. */
async function readHostInto(st: OptState, hostOffset: number, into: Uint8Array): Promise<void> {
  const got = await (st.dataFile ?? st.file).readInto(hostOffset, into);
  if (got < into.byteLength) into.fill(0, got);
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

export async function readCompressed(st: OptState, m: Extract<Mapping, { kind: 'compressed' }>): Promise<Uint8Array> {
  const input = await st.file.read(m.hostOffset, m.length);
  return decompressCluster(st.header.compressionType === 1 ? 1 : 0, input, st.geometry.clusterSize, m.hostOffset);
}
