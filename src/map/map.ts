/**
 * `qemu-img map` (QEMU 7.2 qemu-img.c img_map): block status in chunks of at most 1 GiB, adjacent
 * entries merged when nothing but their length tells them apart, printed as JSON or as the human
 * table of data extents.
 */
import { BLOCK_STATUS_CHUNK_BYTES } from '../limits.js';
import { unsupported } from '../errors.js';
import { ChainStatus } from './status.js';
import type { MapEntry, MapLayer } from './types.js';


export type MapOutput = 'human' | 'json';

export interface MapOptions {
  output: MapOutput;
  /** --start-offset (default 0). */
  startOffset?: number;
  /** --max-length (default: to the end of the disk). */
  maxLength?: number;
}

/** entry_mergeable(): same flags, depth and file, and offsets that continue (or both absent). */
export function entryMergeable(curr: MapEntry, next: MapEntry): boolean {
  if (curr.length === 0) return false;
  if (curr.zero !== next.zero || curr.data !== next.data || curr.depth !== next.depth || curr.present !== next.present) return false;
  if ((curr.filename === undefined) !== (next.filename === undefined)) return false;
  if ((curr.offset === undefined) !== (next.offset === undefined)) return false;
  if (curr.filename !== undefined && curr.filename !== next.filename) return false;
  if (curr.offset !== undefined && curr.offset + curr.length !== next.offset) return false;
  return true;
}

/** One JSON entry, exactly as qemu-img 7.2 prints it (no `filename` key). */
export function jsonEntry(e: MapEntry): string {
  const offset = e.offset === undefined ? '' : `, "offset": ${e.offset}`;
  return `{ "start": ${e.start}, "length": ${e.length}, "depth": ${e.depth}, "present": ${e.present}, "zero": ${e.zero}, "data": ${e.data}${offset}}`;
}

/** printf's `%#-16x`: 0x-prefixed hex (but plain "0"), left-aligned in 16 columns. */
export function hex16(n: number): string {
  return (n === 0 ? '0' : `0x${n.toString(16)}`).padEnd(16);
}

export const HUMAN_HEADER = `${'Offset'.padEnd(16)}${'Length'.padEnd(16)}${'Mapped to'.padEnd(16)}File\n`;

export const HUMAN_UNMAPPABLE = 'File contains external, encrypted or compressed clusters.';

/**
 * Runs img_map's loop, calling `dump(entry, hasNext)` for each entry qemu-img would print (for JSON,
 * the merged entries; for the human table, the merged entries after its coalescing of non-data
 * entries). `dump` may throw to stop, as qemu-img does on a compressed cluster in the human table.
 */
export async function runMap(
  top: MapLayer,
  opts: MapOptions,
  dump: (entry: MapEntry, hasNext: boolean) => void,
): Promise<void> {
  const status = new ChainStatus(top);
  let length = top.size;
  if (opts.maxLength !== undefined) length = Math.min((opts.startOffset ?? 0) + opts.maxLength, length);
  let curr: MapEntry = { start: opts.startOffset ?? 0, length: 0, depth: 0, present: false, zero: false, data: false };
  while (curr.start + curr.length < length) {
    const offset = curr.start + curr.length;
    const n = Math.min(BLOCK_STATUS_CHUNK_BYTES, length - offset);
    const next = await status.blockStatus(offset, n);
    if (entryMergeable(curr, next)) {
      curr.length += next.length;
      continue;
    }
    if (curr.length > 0) {
      dump(curr, true);
      if (opts.output === 'human' && (!next.data || next.zero)) {
        // "This format ignores the distinction between 0, ZERO and ZERO|DATA": more coalescing.
        next.data = false;
        next.zero = true;
      }
    }
    curr = next;
  }
  dump(curr, false);
}

/** The entries of `qemu-img map --output=json`. */
export async function mapJsonEntries(top: MapLayer, opts: Omit<MapOptions, 'output'> = {}): Promise<MapEntry[]> {
  const out: MapEntry[] = [];
  await runMap(top, { ...opts, output: 'json' }, (e) => out.push({ ...e }));
  return out;
}

/**
 * Writes the map as qemu-img 7.2 does, piece by piece through `write`. In the human table, a data
 * extent without a host offset (compressed) stops the output with a typed error, after the lines
 * before it (qemu-img: "File contains external, encrypted or compressed clusters.", exit 1).
 */
export async function writeMap(top: MapLayer, opts: MapOptions, write: (text: string) => void): Promise<void> {
  if (opts.output === 'json') {
    write('[');
    await runMap(top, opts, (e, hasNext) => write(`${jsonEntry(e)}${hasNext ? ',\n' : ''}`));
    write(']\n');
    return;
  }
  write(HUMAN_HEADER);
  await runMap(top, opts, (e) => {
    if (e.data && e.offset === undefined) throw unsupported(HUMAN_UNMAPPABLE);
    if (e.data && !e.zero) write(`${hex16(e.start)}${hex16(e.length)}${hex16(e.offset ?? 0)}${e.filename ?? ''}\n`);
  });
}
