/**
 * `qcow2 map` logic on fake layers and fake hole oracles; every expected entry is derived by hand
 * from QEMU 7.2's rules (qemu-img.c get_block_status / entry_mergeable / dump_map_entry, block/io.c
 * bdrv_co_block_status, block/qcow2.c qcow2_co_block_status, block/file-posix.c find_allocation).
 */
import { describe, expect, it } from 'vitest';
import type { Extent } from '../../src/engine/types.js';
import { entryMergeable, hex16, jsonEntry, mapJsonEntries, runMap, writeMap } from '../../src/map/map.js';
import { detectMetadataPreallocation } from '../../src/map/prealloc.js';
import { fileStatus } from '../../src/map/status.js';
import type { HoleOracle, MapEntry, MapLayer } from '../../src/map/types.js';

const C = 65536;

/** A file of `size` bytes whose data is in `data` ([start, end) ranges, sorted); the rest is holes. */
function holes(size: number, data: Array<[number, number]> = [[0, size]]): HoleOracle {
  return {
    size,
    seekData(offset) {
      if (offset >= size) return null;
      const r = data.find(([, end]) => end > offset);
      return r ? Math.max(r[0], offset) : null;
    },
    seekHole(offset) {
      if (offset >= size) return null;
      const r = data.find(([start, end]) => start <= offset && offset < end);
      return r ? Math.min(r[1], size) : offset;
    },
  };
}

/** A qcow2 layer whose extents (covering [0, size)) are given. */
function qcow2(
  size: number,
  extents: Extent[],
  opts: { backing?: MapLayer; prealloc?: boolean; image?: HoleOracle; dataFile?: HoleOracle; name?: string } = {},
): MapLayer {
  const files: MapLayer['files'] = { image: { name: opts.name ?? 'top.qcow2', holes: opts.image ?? holes(1 << 30) } };
  if (opts.dataFile) files['data-file'] = { name: 'data.raw', holes: opts.dataFile };
  return {
    format: 'qcow2',
    size,
    files,
    metadataPreallocation: opts.prealloc ?? false,
    backing: opts.backing,
    extents: async (offset, length) => {
      const end = offset + length;
      const out: Extent[] = [];
      for (const e of extents) {
        const from = Math.max(e.start, offset);
        const to = Math.min(e.start + e.length, end);
        if (from >= to) continue;
        const piece: Extent = { ...e, start: from, length: to - from };
        if (e.hostOffset !== undefined) piece.hostOffset = e.hostOffset + (from - e.start);
        out.push(piece);
      }
      return out;
    },
  };
}

function raw(oracle: HoleOracle, name = 'base.raw'): MapLayer {
  return {
    format: 'raw',
    size: Math.ceil(oracle.size / 512) * 512,
    files: { image: { name, holes: oracle } },
    metadataPreallocation: false,
    backing: undefined,
    extents: async () => [],
  };
}

const data = (start: number, length: number, hostOffset: number, file: Extent['file'] = 'image'): Extent => ({ start, length, kind: 'data', hostOffset, file });
const zero = (start: number, length: number, hostOffset?: number): Extent =>
  hostOffset === undefined ? { start, length, kind: 'zero' } : { start, length, kind: 'zero', hostOffset, file: 'image' };
const unalloc = (start: number, length: number, hostOffset?: number): Extent =>
  hostOffset === undefined ? { start, length, kind: 'unallocated' } : { start, length, kind: 'unallocated', hostOffset, file: 'image' };
const compressed = (start: number, length: number): Extent => ({ start, length, kind: 'compressed' });

/** The entries without the filename, as the JSON shows them. */
async function json(top: MapLayer, opts: { startOffset?: number; maxLength?: number } = {}): Promise<Array<Omit<MapEntry, 'filename'>>> {
  return (await mapJsonEntries(top, opts)).map(({ filename: _f, ...e }) => e);
}

describe('single layer without backing', () => {
  it('maps data, unallocated, zero, preallocated zero and compressed clusters, merging contiguous data', async () => {
    const top = qcow2(7 * C, [
      data(0, C, 5 * C),
      data(C, C, 6 * C), // continues the host range: merged with the first
      data(2 * C, C, 9 * C), // does not: a new entry
      unalloc(3 * C, C), // no backing: reads as zero, not present
      zero(4 * C, C), // zero flag, no host cluster
      compressed(5 * C, C), // data without an offset
      zero(6 * C, C, 12 * C), // preallocated zero: zero with an offset
    ]);
    expect(await json(top)).toEqual([
      { start: 0, length: 2 * C, depth: 0, present: true, zero: false, data: true, offset: 5 * C },
      { start: 2 * C, length: C, depth: 0, present: true, zero: false, data: true, offset: 9 * C },
      { start: 3 * C, length: C, depth: 0, present: false, zero: true, data: false },
      { start: 4 * C, length: C, depth: 0, present: true, zero: true, data: false },
      { start: 5 * C, length: C, depth: 0, present: true, zero: false, data: true },
      { start: 6 * C, length: C, depth: 0, present: true, zero: true, data: false, offset: 12 * C },
    ]);
  });

  it('merges adjacent compressed clusters and adjacent offsetless zero ranges', async () => {
    const top = qcow2(4 * C, [compressed(0, C), compressed(C, C), zero(2 * C, C), zero(3 * C, C)]);
    expect(await json(top)).toEqual([
      { start: 0, length: 2 * C, depth: 0, present: true, zero: false, data: true },
      { start: 2 * C, length: 2 * C, depth: 0, present: true, zero: true, data: false },
    ]);
  });

  it('an unallocated subcluster of an allocated cluster keeps its offset but is not present', async () => {
    const S = C / 32;
    const top = qcow2(C, [data(0, S, 3 * C), unalloc(S, 31 * S, 3 * C + S)]);
    expect(await json(top)).toEqual([
      { start: 0, length: S, depth: 0, present: true, zero: false, data: true, offset: 3 * C },
      { start: S, length: 31 * S, depth: 0, present: false, zero: true, data: false, offset: 3 * C + S },
    ]);
  });

  it('an empty disk is one empty entry', async () => {
    const out: string[] = [];
    await writeMap(qcow2(0, []), { output: 'json' }, (t) => out.push(t));
    expect(out.join('')).toBe('[{ "start": 0, "length": 0, "depth": 0, "present": false, "zero": false, "data": false}]\n');
  });

  it('--start-offset and --max-length cut the range, mid-extent offsets included', async () => {
    const top = qcow2(3 * C, [data(0, C, 5 * C), unalloc(C, C), data(2 * C, C, 7 * C)]);
    expect(await json(top, { startOffset: 1000, maxLength: C + 5000 })).toEqual([
      { start: 1000, length: C - 1000, depth: 0, present: true, zero: false, data: true, offset: 5 * C + 1000 },
      { start: C, length: 6000, depth: 0, present: false, zero: true, data: false },
    ]);
  });
});

describe('backing chains', () => {
  it('descends to the first layer that says zero or data; depth counts the layers passed', async () => {
    const base = qcow2(2 * C, [data(0, C, 3 * C), unalloc(C, C)], { name: 'base.qcow2' });
    const top = qcow2(4 * C, [unalloc(0, C), unalloc(C, C), data(2 * C, C, 9 * C), unalloc(3 * C, C)], { backing: base });
    expect(await json(top)).toEqual([
      // Backing data: found one layer down.
      { start: 0, length: C, depth: 1, present: true, zero: false, data: true, offset: 3 * C },
      // Unallocated in both: the base has no backing, so it says zero (not present) at depth 1.
      { start: C, length: C, depth: 1, present: false, zero: true, data: false },
      { start: 2 * C, length: C, depth: 0, present: true, zero: false, data: true, offset: 9 * C },
      // At/after the end of the backing file the overlay itself says zero.
      { start: 3 * C, length: C, depth: 0, present: false, zero: true, data: false },
    ]);
  });

  it('splits an unallocated range at the end of a shorter backing file', async () => {
    const base = qcow2(C + C / 2, [unalloc(0, 2 * C)]);
    const top = qcow2(3 * C, [unalloc(0, 3 * C)], { backing: base });
    expect(await json(top)).toEqual([
      { start: 0, length: C + C / 2, depth: 1, present: false, zero: true, data: false },
      { start: C + C / 2, length: C + C / 2, depth: 0, present: false, zero: true, data: false },
    ]);
  });

  it('a zero cluster in the overlay hides the backing data', async () => {
    const base = qcow2(2 * C, [data(0, 2 * C, 4 * C)]);
    const top = qcow2(2 * C, [zero(0, C), unalloc(C, C)], { backing: base });
    expect(await json(top)).toEqual([
      { start: 0, length: C, depth: 0, present: true, zero: true, data: false },
      { start: C, length: C, depth: 1, present: true, zero: false, data: true, offset: 5 * C },
    ]);
  });

  it('a raw backing file reports its holes and data at the guest offset, zero past its end', async () => {
    // 12388-byte raw file (a 12800-byte layer): data in [0, 4096) and [8192, 12388).
    const base = raw(holes(12388, [[0, 4096], [8192, 12388]]));
    const top = qcow2(16384, [data(0, 4096, 20480), unalloc(4096, 12288)], { backing: base });
    expect(await json(top)).toEqual([
      { start: 0, length: 4096, depth: 0, present: true, zero: false, data: true, offset: 20480 },
      { start: 4096, length: 4096, depth: 1, present: true, zero: true, data: false, offset: 4096 },
      { start: 8192, length: 4196, depth: 1, present: true, zero: false, data: true, offset: 8192 },
      // Between the end of the file and the end of the layer: SEEK_DATA fails with ENXIO.
      { start: 12388, length: 412, depth: 1, present: true, zero: true, data: false, offset: 12388 },
      { start: 12800, length: 3584, depth: 0, present: false, zero: true, data: false },
    ]);
  });

  it('entries of different files at the same depth and contiguous offsets do not merge', () => {
    const a: MapEntry = { start: 0, length: 10, depth: 1, present: true, zero: false, data: true, offset: 0, filename: 'a' };
    expect(entryMergeable(a, { ...a, start: 10, offset: 10 })).toBe(true);
    expect(entryMergeable(a, { ...a, start: 10, offset: 10, filename: 'b' })).toBe(false);
    expect(entryMergeable(a, { ...a, start: 10, offset: 11 })).toBe(false);
    expect(entryMergeable(a, { ...a, start: 10, offset: 10, depth: 0 })).toBe(false);
    expect(entryMergeable({ ...a, length: 0 }, { ...a, start: 0 })).toBe(false);
  });
});

describe('metadata preallocation: data refined by the host file holes', () => {
  it('splits data at the file data/hole boundaries; holes are zero and data', async () => {
    const file = holes(4 * C, [[C, C + 4096], [3 * C, 4 * C]]);
    const top = qcow2(3 * C, [data(0, 3 * C, C)], { prealloc: true, image: file });
    expect(await json(top)).toEqual([
      { start: 0, length: 4096, depth: 0, present: true, zero: false, data: true, offset: C },
      { start: 4096, length: 2 * C - 4096, depth: 0, present: true, zero: true, data: true, offset: C + 4096 },
      { start: 2 * C, length: C, depth: 0, present: true, zero: false, data: true, offset: 3 * C },
    ]);
  });

  it('past the end of the file reads as zero, for the whole rest of the cluster run', async () => {
    // Host [C, 3C) but the file ends at 2C + 100 (a 2C + 512 byte node).
    const file = holes(2 * C + 100, [[C, 2 * C + 100]]);
    const top = qcow2(2 * C, [data(0, 2 * C, C)], { prealloc: true, image: file });
    expect(await json(top)).toEqual([
      { start: 0, length: C + 100, depth: 0, present: true, zero: false, data: true, offset: C },
      { start: C + 100, length: C - 100, depth: 0, present: true, zero: true, data: true, offset: 2 * C + 100 },
    ]);
  });

  it('without the heuristic (or for zero clusters) holes are not looked at', async () => {
    const file = holes(4 * C, [[3 * C, 4 * C]]);
    expect(await json(qcow2(C, [data(0, C, C)], { image: file }))).toEqual([
      { start: 0, length: C, depth: 0, present: true, zero: false, data: true, offset: C },
    ]);
    expect(await json(qcow2(C, [zero(0, C, C)], { prealloc: true, image: file }))).toEqual([
      { start: 0, length: C, depth: 0, present: true, zero: true, data: false, offset: C },
    ]);
  });

  it('data in an external data file is refined by that file', async () => {
    const top = qcow2(2 * C, [data(0, 2 * C, 0, 'data-file')], { prealloc: true, image: holes(C), dataFile: holes(2 * C, [[C, 2 * C]]) });
    expect(await json(top)).toEqual([
      { start: 0, length: C, depth: 0, present: true, zero: true, data: true, offset: 0 },
      { start: C, length: C, depth: 0, present: true, zero: false, data: true, offset: C },
    ]);
  });

  it('detects preallocation when in-use clusters reach max(real * 10/9, real + 2)', async () => {
    const refcounts = (used: number) => async (i: number) => (i < used ? 1 : 0);
    // 5 clusters really allocated: threshold max(floor(50/9) = 5, 7) = 7.
    const base = { fileLength: 10 * C, allocatedBytes: 5 * C, clusterSize: C };
    expect(await detectMetadataPreallocation({ ...base, refcount: refcounts(7) })).toBe(true);
    expect(await detectMetadataPreallocation({ ...base, refcount: refcounts(6) })).toBe(false);
    // 62 real clusters: threshold max(68, 64) = 68; 64 real: max(71, 66) = 71 (QEMU flips between them).
    expect(await detectMetadataPreallocation({ fileLength: 69 * C, allocatedBytes: 62 * C, clusterSize: C, refcount: refcounts(69) })).toBe(true);
    expect(await detectMetadataPreallocation({ fileLength: 69 * C, allocatedBytes: 64 * C, clusterSize: C, refcount: refcounts(69) })).toBe(false);
    // Only the clusters covering the file count (its length rounded up to 512, then to clusters).
    expect(await detectMetadataPreallocation({ ...base, fileLength: 6 * C + 1, refcount: refcounts(100) })).toBe(true);
    expect(await detectMetadataPreallocation({ ...base, fileLength: 6 * C, refcount: refcounts(100) })).toBe(false);
    // A refcount read error means no.
    expect(
      await detectMetadataPreallocation({
        ...base,
        refcount: async () => {
          throw new Error('bad refcount block');
        },
      }),
    ).toBe(false);
  });
});

describe('file status (find_allocation)', () => {
  it('answers data up to the next hole, zero up to the next data, zero past the last data', () => {
    const h = holes(10_000, [[4096, 8192]]);
    expect(fileStatus(h, 0, 100_000)).toEqual({ pnum: 4096, data: false, zero: true, eof: false });
    expect(fileStatus(h, 5000, 100_000)).toEqual({ pnum: 3192, data: true, zero: false, eof: false });
    // 10000 rounds up to a 10240-byte node.
    expect(fileStatus(h, 8192, 100_000)).toEqual({ pnum: 2048, data: false, zero: true, eof: true });
    expect(fileStatus(h, 10_240, 100)).toEqual({ pnum: 0, data: false, zero: false, eof: true });
  });

  it('treats lseek failures and impossible answers as data', () => {
    const failing: HoleOracle = {
      size: 8192,
      seekData: () => {
        throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      },
      seekHole: () => 0,
    };
    expect(fileStatus(failing, 0, 8192)).toEqual({ pnum: 8192, data: true, zero: false, eof: true });
    // Data at 0 but a hole at 0 too (a hole dug in between: EBUSY): data.
    const racing: HoleOracle = { size: 8192, seekData: (o) => o, seekHole: (o) => o };
    expect(fileStatus(racing, 0, 4096)).toEqual({ pnum: 4096, data: true, zero: false, eof: false });
  });
});

describe('output', () => {
  it('prints JSON entries exactly as qemu-img 7.2 does', async () => {
    expect(jsonEntry({ start: 0, length: 65536, depth: 0, present: true, zero: false, data: true, offset: 327680, filename: 'x' })).toBe(
      '{ "start": 0, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, "offset": 327680}',
    );
    const out: string[] = [];
    await writeMap(qcow2(2 * C, [data(0, C, C), unalloc(C, C)]), { output: 'json' }, (t) => out.push(t));
    expect(out.join('')).toBe(
      '[{ "start": 0, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, "offset": 65536},\n' +
        '{ "start": 65536, "length": 65536, "depth": 0, "present": false, "zero": true, "data": false}]\n',
    );
  });

  it('prints the human table of data extents, with printf %#-16x numbers', async () => {
    expect(hex16(0)).toBe('0               ');
    expect(hex16(0x1000)).toBe('0x1000          ');
    const base = qcow2(4 * C, [data(0, 4 * C, 8 * C)], { name: 'base.qcow2' });
    const top = qcow2(4 * C, [data(0, C, C), zero(C, C), unalloc(2 * C, 2 * C)], { backing: base });
    const out: string[] = [];
    await writeMap(top, { output: 'human' }, (t) => out.push(t));
    expect(out.join('')).toBe(
      'Offset          Length          Mapped to       File\n' +
        '0               0x10000         0x10000         top.qcow2\n' +
        '0x20000         0x20000         0xa0000         base.qcow2\n',
    );
  });

  it('coalesces zero, zero+data and unallocated ranges for the human table (invisible in it)', async () => {
    // After a dumped entry, a following zero or non-data entry is turned into plain "zero" before it
    // is compared with the next: a file hole in preallocated data (zero+data) then a preallocated
    // zero cluster with the contiguous offset become one entry. JSON keeps them apart.
    const file = holes(8 * C, [[0, C], [3 * C, 4 * C]]);
    const top = qcow2(4 * C, [data(0, C, 0), data(C, C, C), zero(2 * C, C, 2 * C), data(3 * C, C, 3 * C)], { prealloc: true, image: file });
    const base = { depth: 0, present: true, filename: 'top.qcow2' };
    expect(await mapJsonEntries(top)).toEqual([
      { ...base, start: 0, length: C, zero: false, data: true, offset: 0 },
      { ...base, start: C, length: C, zero: true, data: true, offset: C },
      { ...base, start: 2 * C, length: C, zero: true, data: false, offset: 2 * C },
      { ...base, start: 3 * C, length: C, zero: false, data: true, offset: 3 * C },
    ]);
    const dumped: MapEntry[] = [];
    await runMap(top, { output: 'human' }, (e) => dumped.push({ ...e }));
    expect(dumped).toEqual([
      { ...base, start: 0, length: C, zero: false, data: true, offset: 0 },
      { ...base, start: C, length: 2 * C, zero: true, data: false, offset: C },
      { ...base, start: 3 * C, length: C, zero: false, data: true, offset: 3 * C },
    ]);
    const out: string[] = [];
    await writeMap(top, { output: 'human' }, (t) => out.push(t));
    expect(out.join('')).toBe(
      'Offset          Length          Mapped to       File\n0               0x10000         0               top.qcow2\n0x30000         0x10000         0x30000         top.qcow2\n',
    );
  });

  it('stops the human table with an error at a compressed cluster, after the lines before it', async () => {
    const top = qcow2(3 * C, [data(0, C, C), compressed(C, C), data(2 * C, C, 2 * C)]);
    const out: string[] = [];
    await expect(writeMap(top, { output: 'human' }, (t) => out.push(t))).rejects.toMatchObject({
      code: 'unsupported',
      message: 'File contains external, encrypted or compressed clusters.',
    });
    expect(out.join('')).toBe('Offset          Length          Mapped to       File\n0               0x10000         0x10000         top.qcow2\n');
  });
});
