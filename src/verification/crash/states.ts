/**
 * Every state a file can be in after a power loss, from the log of a RecordingFile.
 *
 * The log is cut into epochs by completed flushes. A crash during epoch e leaves everything written
 * before the epoch (durable: a flush of its file completed after it) plus any subset (not only a
 * prefix) of the writes still pending, since a disk may persist a write cache in any order. A write cut by the power
 * loss may land in part: sector by sector (512 bytes are atomic, more are not).
 *
 * Epochs with few writes get every subset; larger ones get the empty and full sets, every prefix,
 * every single write alone and every write left out alone, and seeded random subsets. Each epoch
 * also gets torn variants: a prefix of writes, then one write of several sectors landed in part.
 */
import type { FileOp, FileRole } from '../../io/recording-file.js';

export const SECTOR = 512;

export interface CrashState {
  epoch: number;
  /** Log index where the epoch ends (exclusive): the crash happened before it. */
  end: number;
  /** Log indexes of the pending writes and truncates that landed, in log order. */
  landed: number[];
  /** A write that landed in part: its log index and which of its sectors landed. */
  torn?: { index: number; sectors: boolean[] };
}

export interface StateOptions {
  /** Epochs with at most this many pending operations get all 2^n subsets. */
  exhaustiveUpTo?: number;
  /** Random subsets for larger epochs. */
  samples?: number;
  /** Torn variants per epoch (at most one per multi-sector write, taken in order). */
  torn?: number;
  seed?: number;
}

export interface Epoch {
  index: number;
  start: number;
  end: number;
  /** Writes and truncates that may or may not have landed. */
  pending: number[];
}

/**
 * The crash points of a log: just before each completed flush, and at its end. At each, the
 * pending operations are those no completed flush of their own file covers yet (an image and its
 * data file are flushed separately); the rest are durable.
 */
export function epochsOf(log: FileOp[]): Epoch[] {
  const out: Epoch[] = [];
  let start = 0;
  let open: number[] = [];
  for (let i = 0; i <= log.length; i++) {
    const op = log[i];
    if (op !== undefined && op.kind !== 'flush') {
      open.push(i);
      continue;
    }
    out.push({ index: out.length, start, end: i, pending: [...open] });
    if (op === undefined) break;
    const file = fileOf(op);
    // Writes still in flight when the flush began are not covered by it.
    open = open.filter((k) => fileOf(log[k]!) !== file || op.inFlight.includes(k));
    start = i + 1;
  }
  return out;
}

export function fileOf(op: FileOp): FileRole {
  return op.file ?? 'image';
}

export function* crashStates(log: FileOp[], opts: StateOptions = {}): Generator<CrashState> {
  const exhaustive = opts.exhaustiveUpTo ?? 8;
  const samples = opts.samples ?? 64;
  const tornPerEpoch = opts.torn ?? 8;
  let rng = (opts.seed ?? 1) >>> 0 || 1;
  const random = (): number => {
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    rng >>>= 0;
    return rng / 0x1_0000_0000;
  };
  for (const e of epochsOf(log)) {
    const p = e.pending;
    const state = (landed: number[], torn?: CrashState['torn']): CrashState => ({ epoch: e.index, end: e.end, landed, ...(torn ? { torn } : {}) });
    if (p.length <= exhaustive) {
      for (let mask = 0; mask < 1 << p.length; mask++) yield state(p.filter((_, k) => (mask >> k) & 1));
    } else {
      for (let k = 0; k <= p.length; k++) yield state(p.slice(0, k));
      for (let k = 0; k < p.length; k++) yield state([p[k]!]);
      for (let k = 0; k < p.length; k++) yield state(p.filter((_, j) => j !== k));
      for (let n = 0; n < samples; n++) yield state(p.filter(() => random() < 0.5));
    }
    let torn = 0;
    for (let k = 0; k < p.length && torn < tornPerEpoch; k++) {
      const op = log[p[k]!]!;
      if (op.kind !== 'write') continue;
      const count = sectorsOf(op.offset, op.data.byteLength);
      if (count < 2) continue;
      torn++;
      // The first half landed; and, with a random subset of the others, random sectors.
      const half = Array.from({ length: count }, (_, j) => j < count / 2);
      yield state(p.slice(0, k), { index: p[k]!, sectors: half });
      const scattered = Array.from({ length: count }, () => random() < 0.5);
      yield state(p.filter((_, j) => j !== k && random() < 0.5), { index: p[k]!, sectors: scattered });
    }
  }
}

function sectorsOf(offset: number, length: number): number {
  if (length === 0) return 0;
  return Math.floor((offset + length - 1) / SECTOR) - Math.floor(offset / SECTOR) + 1;
}

/**
 * The file's bytes for each state of one epoch: `durable` is the file at the epoch's start; the
 * state's operations are applied on a copy, in log order.
 */
export function materialize(durable: Uint8Array, log: FileOp[], s: CrashState, file: FileRole = 'image'): Uint8Array {
  let bytes = durable;
  let length = durable.byteLength;
  const ensure = (n: number) => {
    if (n <= bytes.byteLength) return;
    const grown = new Uint8Array(Math.max(n, bytes.byteLength * 2));
    grown.set(bytes.subarray(0, length));
    bytes = grown;
  };
  bytes = durable.slice();
  const ops = [...s.landed];
  if (s.torn) ops.push(s.torn.index);
  ops.sort((a, b) => a - b);
  for (const i of ops) {
    const op = log[i]!;
    if (fileOf(op) !== file) continue;
    if (op.kind === 'truncate') {
      ensure(op.length);
      bytes.fill(0, op.length);
      length = op.length;
    } else if (op.kind === 'write') {
      if (s.torn && i === s.torn.index) {
        applyTorn(op.offset, op.data, s.torn.sectors, (at, piece) => {
          ensure(at + piece.byteLength);
          bytes.set(piece, at);
          length = Math.max(length, at + piece.byteLength);
        });
      } else {
        ensure(op.offset + op.data.byteLength);
        bytes.set(op.data, op.offset);
        length = Math.max(length, op.offset + op.data.byteLength);
      }
    }
  }
  return bytes.subarray(0, length);
}

function applyTorn(offset: number, data: Uint8Array, sectors: boolean[], put: (at: number, piece: Uint8Array) => void): void {
  const first = Math.floor(offset / SECTOR);
  sectors.forEach((landed, k) => {
    if (!landed) return;
    const from = Math.max(offset, (first + k) * SECTOR);
    const to = Math.min(offset + data.byteLength, (first + k + 1) * SECTOR);
    put(from, data.subarray(from - offset, to - offset));
  });
}

/** A file at a crash point: its initial bytes plus every operation on it made durable by then. */
export function durableAt(initial: Uint8Array, log: FileOp[], epoch: Epoch, file: FileRole = 'image'): Uint8Array {
  const pending = new Set(epoch.pending);
  const landed: number[] = [];
  for (let i = 0; i < epoch.end; i++) if (log[i]!.kind !== 'flush' && !pending.has(i)) landed.push(i);
  return materialize(initial, log, { epoch: epoch.index, end: epoch.end, landed }, file);
}
