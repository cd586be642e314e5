// Declarative recipes for the QCOW2 image corpus. Every image is produced by QEMU's own tools
// (qemu-img / qemu-io), so the corpus is ground truth for interoperability tests and for
// `qcow2 verify`.
//
// A recipe lists the steps that build it inside its own directory (the working directory of every
// step; relative file names resolve there). The placeholder `{dir}` in an argument is replaced by
// the absolute path of that directory (QEMU 7.2 resolves a relative `data_file` name against the
// process's working directory, not the image's, so external data files are stored absolute).
//
// `features` is a closed vocabulary of claims about the finished image; the corpus test checks each
// claim with QEMU (see FEATURE_VOCABULARY). `reads` are guest-content facts derived from the writes
// the recipe performed (a byte range that must read as one repeated byte), so an engine under test
// and QEMU (`qemu-io -r -c 'read -P …'`) can both be checked against them.

import { CALIBRATION_ATTEMPTS, CALIBRATION_FLAKE } from '../qemu-image.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** A byte range of guest data that reads back as `pattern` repeated (0 for zeroes). */
export interface GuestRead {
  offset: number;
  length: number;
  pattern: number;
}

/** One segment of a generated raw file. */
export interface RawSegment {
  offset: number;
  length: number;
  /** random: incompressible (seeded PRNG); text: highly compressible lines; zero: left sparse. */
  fill: 'random' | 'text' | 'zero';
  seed: number;
}

export type Step =
  | {
      tool: 'qemu-img';
      args: string[];
      /** Retry (up to `times` more attempts) when the output matches `when` (a RegExp source). */
      retry?: { times: number; when: string };
    }
  | {
      tool: 'qemu-io';
      args: string[];
      /** The step is expected to die from this signal (e.g. `sigraise 9`), not to exit 0. */
      expectSignal?: 'SIGKILL';
    }
  /** Write a deterministic raw file (no QEMU involved) as input for `qemu-img convert`. */
  | { tool: 'gen-raw'; file: string; size: number; segments: RawSegment[] }
  /** Fail the build unless `(byte at offset) & mask === value` in `file`. */
  | { tool: 'assert-byte'; file: string; offset: number; mask: number; value: number; why: string };

export interface Recipe {
  /** Unique, file-system-safe name; also the image's subdirectory. */
  name: string;
  description: string;
  /** Claims checked by the corpus test (closed vocabulary: FEATURE_VOCABULARY). */
  features: string[];
  /** Main image file name, relative to the recipe directory. */
  image: string;
  /** Other files the recipe leaves behind (backing files, data files, raw sources). */
  sideFiles: string[];
  virtualSize: number;
  steps: Step[];
  /** Expected guest content of the main image (as seen through its whole backing chain). */
  reads: GuestRead[];
  /**
   * Arguments that open the image for data access (qemu-img check/map/convert/compare, qemu-io),
   * replacing `-f qcow2 <image>`; `{image}` is replaced by the image's absolute path. Absent: the
   * default `-f qcow2 <image>` works.
   */
  openArgs?: string[];
  /** Extra arguments `qemu-img info` needs (none of the current recipes need any). */
  infoArgs?: string[];
  /** LUKS passphrase, for encrypted images. */
  secret?: string;
  /** Exit code `qemu-img check` must give: 0 clean, 2 corruptions, 3 leaks only. */
  checkExitCode: 0 | 2 | 3;
  /** A file (relative name) with identical guest content, and its format (for `qemu-img compare`). */
  equivalentTo?: { file: string; format: 'raw' | 'qcow2' };
}

/**
 * Every feature string a recipe may claim. `key=value` features list the key with `=`.
 * The corpus test has a check for each; an unknown feature is an error.
 */
export const FEATURE_VOCABULARY: readonly string[] = [
  'compat=', // header version: 0.10 (v2) or 1.1 (v3)
  'cluster_size=', // bytes
  'refcount_bits=',
  'compression_type=', // zlib | zstd (v3 header byte 104)
  'compressed_clusters', // at least one compressed cluster (qemu-img check counts them)
  'extended_l2',
  'subcluster_extents', // qemu-img map shows extents that are not cluster aligned
  'data_file',
  'data_file_raw',
  'data_file_relative', // the data file name in the header is relative (run QEMU in the image dir)
  'backing=', // raw | qcow2: format of the immediate backing file
  'backing_depth=', // number of backing files below the image
  'overlay_larger_than_backing',
  'snapshots=', // internal snapshot count
  'bitmaps=', // persistent dirty bitmap count
  'disabled_bitmaps=', // how many of them are disabled (no `auto` flag)
  'lazy_refcounts',
  'dirty', // incompatible bit 0 left set (byte 79 of the header)
  'preallocation=', // metadata
  'zero_writes', // `write -z` (and `-z -u`) were issued; the zeroed ranges are in `reads`
  'zero_clusters', // qemu-img map shows zero-flagged (present, non-data) extents
  'discard', // `discard` commands were issued
  'unaligned_writes', // some write (and read fact) is not 512-byte aligned
  'cross_cluster_writes',
  'cross_l2_writes', // some write spans two L2 tables
  'above_4gib', // data allocated at guest offsets >= 4 GiB
  'encryption=', // luks
  'converted', // produced by `qemu-img convert`; `equivalentTo` names its source
];

// ---------------------------------------------------------------------------------------------
// Guest content model: tracks what each written byte range must read back as.

type Seg = { start: number; end: number; pattern: number | null }; // null: unknown content

class GuestModel {
  private segs: Seg[] = [];

  set(offset: number, length: number, pattern: number | null): void {
    const start = offset;
    const end = offset + length;
    const out: Seg[] = [];
    for (const s of this.segs) {
      if (s.end <= start || s.start >= end) {
        out.push(s);
        continue;
      }
      if (s.start < start) out.push({ start: s.start, end: start, pattern: s.pattern });
      if (s.end > end) out.push({ start: end, end: s.end, pattern: s.pattern });
    }
    out.push({ start, end, pattern });
    out.sort((a, b) => a.start - b.start);
    this.segs = out;
  }

  reads(): GuestRead[] {
    const out: GuestRead[] = [];
    for (const s of this.segs) {
      if (s.pattern === null) continue;
      const last = out[out.length - 1];
      if (last && last.pattern === s.pattern && last.offset + last.length === s.start) {
        last.length += s.end - s.start;
      } else {
        out.push({ offset: s.start, length: s.end - s.start, pattern: s.pattern });
      }
    }
    return out;
  }
}

const hex = (p: number): string => `0x${p.toString(16).padStart(2, '0')}`;

interface ImgOpts {
  compat?: '0.10' | '1.1';
  clusterSize?: number;
  refcountBits?: number;
  compressionType?: 'zlib' | 'zstd';
  extendedL2?: boolean;
  lazyRefcounts?: boolean;
  preallocation?: 'metadata';
  dataFile?: string;
  dataFileRaw?: boolean;
  backing?: { file: string; format: 'raw' | 'qcow2' };
}

function createArgs(file: string, size: number, o: ImgOpts): string[] {
  const opts: string[] = [];
  if (o.compat) opts.push(`compat=${o.compat}`);
  if (o.clusterSize) opts.push(`cluster_size=${o.clusterSize}`);
  if (o.refcountBits) opts.push(`refcount_bits=${o.refcountBits}`);
  if (o.compressionType) opts.push(`compression_type=${o.compressionType}`);
  if (o.extendedL2) opts.push('extended_l2=on');
  if (o.lazyRefcounts) opts.push('lazy_refcounts=on');
  if (o.preallocation) opts.push(`preallocation=${o.preallocation}`);
  if (o.dataFile) opts.push(`data_file=${o.dataFile}`);
  if (o.dataFileRaw) opts.push('data_file_raw=on');
  const args = ['create', '-q', '-f', 'qcow2'];
  if (o.backing) args.push('-b', o.backing.file, '-F', o.backing.format);
  if (opts.length) args.push('-o', opts.join(','));
  args.push(file, String(size));
  return args;
}

/** Builds one recipe while tracking the expected guest content of the main image. */
class Builder {
  readonly steps: Step[] = [];
  readonly model = new GuestModel();
  private pending: string[] = [];
  private pendingFile: string | null = null;
  private pendingFmt = 'qcow2';
  private pendingOpen: string[] | null = null;

  constructor(readonly image = 'image.qcow2') {}

  img(...args: string[]): this {
    this.flush();
    this.steps.push({ tool: 'qemu-img', args });
    return this;
  }

  /** Mark the last step as retryable when its output matches `when`. */
  retry(times: number, when: string): this {
    const last = this.steps[this.steps.length - 1];
    if (last?.tool === 'qemu-img') last.retry = { times, when };
    return this;
  }

  create(file: string, size: number, o: ImgOpts = {}): this {
    return this.img(...createArgs(file, size, o));
  }

  /** Start (or continue) a batch of qemu-io commands on `file`. */
  private io(cmd: string, file: string, fmt: string, open: string[] | null): void {
    if (this.pendingFile !== file || this.pendingFmt !== fmt || this.pendingOpen !== open) this.flush();
    this.pendingFile = file;
    this.pendingFmt = fmt;
    this.pendingOpen = open;
    this.pending.push(cmd);
  }

  flush(): this {
    if (this.pendingFile !== null && this.pending.length > 0) {
      const head = this.pendingOpen ?? ['-f', this.pendingFmt];
      const tail = this.pendingOpen ? [] : [this.pendingFile];
      this.steps.push({ tool: 'qemu-io', args: [...head, ...this.pending.flatMap((c) => ['-c', c]), ...tail] });
    }
    this.pending = [];
    this.pendingFile = null;
    this.pendingOpen = null;
    return this;
  }

  /** Target for guest operations: `file` (default: the main image) and whether it is the main view. */
  private target(t?: Target): { file: string; fmt: string; open: string[] | null; tracked: boolean } {
    return {
      file: t?.file ?? this.image,
      fmt: t?.format ?? 'qcow2',
      open: t?.open ?? null,
      tracked: t?.tracked ?? true,
    };
  }

  write(pattern: number, offset: number, length: number, t?: Target & { compressed?: boolean }): this {
    const x = this.target(t);
    this.io(`write ${t?.compressed ? '-c ' : ''}-P ${hex(pattern)} ${offset} ${length}`, x.file, x.fmt, x.open);
    if (x.tracked) this.model.set(offset, length, pattern);
    return this;
  }

  zero(offset: number, length: number, t?: Target & { unmap?: boolean }): this {
    const x = this.target(t);
    this.io(`write -z ${t?.unmap ? '-u ' : ''}${offset} ${length}`, x.file, x.fmt, x.open);
    if (x.tracked) this.model.set(offset, length, 0);
    return this;
  }

  /** Discard; `readsZero` says the range must then read as zeroes (else its content is unknown). */
  discard(offset: number, length: number, readsZero: boolean, t?: Target): this {
    const x = this.target(t);
    this.io(`discard ${offset} ${length}`, x.file, x.fmt, x.open);
    if (x.tracked) this.model.set(offset, length, readsZero ? 0 : null);
    return this;
  }

  /** Raw qemu-io command (not tracked by the model). */
  ioCmd(cmd: string, t?: Target): this {
    const x = this.target(t);
    this.io(cmd, x.file, x.fmt, x.open);
    return this;
  }

  push(step: Step): this {
    this.flush();
    this.steps.push(step);
    return this;
  }

  /**
   * The standard data layout: an unaligned write in the first cluster, a write crossing two
   * cluster boundaries, a write crossing an L2-table boundary (when the disk is big enough), a
   * multi-cluster write in the middle and an unaligned write ending exactly at the end of the disk.
   * Patterns are base, base+1, ... so every image has distinct, recognisable data.
   */
  standard(base: number, cs: number, size: number, opts: { extendedL2?: boolean; t?: Target } = {}): this {
    const entry = opts.extendedL2 ? 16 : 8;
    const l2span = (cs / entry) * cs;
    const t = opts.t;
    this.write(base, 7, Math.min(cs, 4 * KiB) - 20, t);
    // Cross cluster boundaries (two of them; only one for huge clusters, to keep files small).
    if (cs < MiB) this.write(base + 1, 3 * cs - 103, cs + 206, t);
    else this.write(base + 1, cs - 103, 206, t);
    if (crossesL2(cs, size, opts.extendedL2 ?? false)) this.write(base + 2, l2span - 1001, 2003, t);
    const mid = Math.floor(((size / 4) * 3) / cs) * cs + 512;
    this.write(base + 3, mid, Math.min(4 * cs, 256 * KiB), t);
    this.write(base + 4, size - 4 * KiB - 17, 4 * KiB + 17, t);
    return this;
  }
}

interface Target {
  file?: string;
  format?: 'raw' | 'qcow2';
  /** Full qemu-io open arguments replacing `-f fmt file` (e.g. LUKS --image-opts). */
  open?: string[];
  /** Whether the write changes the main image's guest view (default true). */
  tracked?: boolean;
}

type RecipeInit = Omit<Recipe, 'steps' | 'reads' | 'image' | 'sideFiles' | 'checkExitCode'> &
  Partial<Pick<Recipe, 'sideFiles' | 'checkExitCode'>>;

function recipe(init: RecipeInit, b: Builder, extraReads: GuestRead[] = []): Recipe {
  b.flush();
  const r: Recipe = {
    name: init.name,
    description: init.description,
    features: init.features,
    image: b.image,
    sideFiles: init.sideFiles ?? [],
    virtualSize: init.virtualSize,
    steps: b.steps,
    reads: [...b.model.reads(), ...extraReads].sort((x, y) => x.offset - y.offset),
    checkExitCode: init.checkExitCode ?? 0,
  };
  if (init.openArgs) r.openArgs = init.openArgs;
  if (init.infoArgs) r.infoArgs = init.infoArgs;
  if (init.secret !== undefined) r.secret = init.secret;
  if (init.equivalentTo) r.equivalentTo = init.equivalentTo;
  return r;
}

/** Whether the standard layout includes a write across the first L2-table boundary. */
function crossesL2(cs: number, size: number, extendedL2: boolean): boolean {
  const l2span = (cs / (extendedL2 ? 16 : 8)) * cs;
  return l2span + 2 * cs <= (size / 4) * 3 - cs;
}

const sizeName = (cs: number): string => (cs >= MiB ? `${cs / MiB}m` : cs >= KiB ? `${cs / KiB}k` : `${cs}`);

// ---------------------------------------------------------------------------------------------
// The matrix.

function basicRecipes(): Recipe[] {
  const out: Recipe[] = [];
  const clusterSizes = [512, 4 * KiB, 64 * KiB, 2 * MiB];
  let base = 0x10;
  for (const compat of ['0.10', '1.1'] as const) {
    for (const cs of clusterSizes) {
      const v = compat === '0.10' ? 'v2' : 'v3';
      // 1 GiB for 64 KiB clusters so a write can cross the 512 MiB L2 boundary.
      const size = cs === 64 * KiB ? GiB : cs === 2 * MiB ? 256 * MiB : 64 * MiB;
      const b = new Builder().create('image.qcow2', size, { compat, clusterSize: cs }).standard(base, cs, size);
      base += 0x08;
      const cross = crossesL2(cs, size, false);
      out.push(
        recipe(
          {
            name: `${v}-c${sizeName(cs)}`,
            description: `compat=${compat}, ${cs}-byte clusters, default refcounts, standard data layout`,
            features: [
              `compat=${compat}`,
              `cluster_size=${cs}`,
              'refcount_bits=16',
              'unaligned_writes',
              'cross_cluster_writes',
              ...(cross ? ['cross_l2_writes'] : []),
            ],
            virtualSize: size,
          },
          b,
        ),
      );
    }
  }
  return out;
}

function refcountRecipes(): Recipe[] {
  const out: Recipe[] = [];
  const cases: Array<{ cs: number; bits: number }> = [
    ...[1, 2, 4, 8, 16, 32, 64].map((bits) => ({ cs: 64 * KiB, bits })),
    { cs: 512, bits: 1 },
    { cs: 512, bits: 4 },
    { cs: 512, bits: 64 },
  ];
  let base = 0x50;
  for (const { cs, bits } of cases) {
    const size = cs === 512 ? 64 * MiB : 256 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat: '1.1', clusterSize: cs, refcountBits: bits });
    b.standard(base, cs, size);
    // With more than one bit, a snapshot makes refcounts of 2 (and a post-snapshot write COWs).
    const snap = bits >= 2;
    if (snap) {
      b.img('snapshot', '-c', 'snap1', 'image.qcow2');
      b.write(base + 5, cs + 100, 300);
    }
    base += 0x06;
    out.push(
      recipe(
        {
          name: `v3-c${sizeName(cs)}-rc${bits}`,
          description: `${bits}-bit refcounts with ${cs}-byte clusters${snap ? ', one internal snapshot (refcounts of 2)' : ''}`,
          features: [
            'compat=1.1',
            `cluster_size=${cs}`,
            `refcount_bits=${bits}`,
            'unaligned_writes',
            'cross_cluster_writes',
            ...(crossesL2(cs, size, false) ? ['cross_l2_writes'] : []),
            ...(snap ? ['snapshots=1'] : []),
          ],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  return out;
}

function compressionRecipes(): Recipe[] {
  const out: Recipe[] = [];
  const qemuIoCompressed = (
    name: string,
    compat: '0.10' | '1.1',
    type: 'zlib' | 'zstd',
    extendedL2: boolean,
    base: number,
  ): Recipe => {
    const cs = 64 * KiB;
    const size = 256 * MiB;
    const o: ImgOpts = { compat, clusterSize: cs, extendedL2 };
    if (compat === '1.1') o.compressionType = type;
    const b = new Builder().create('image.qcow2', size, o);
    b.write(base, 0, 64 * KiB, { compressed: true })
      .write(base + 1, 64 * KiB, 128 * KiB, { compressed: true })
      .write(base + 2, 5 * MiB, 64 * KiB, { compressed: true })
      .write(base + 3, 100 * MiB, 256 * KiB, { compressed: true })
      // Partial overwrite of a compressed cluster: QEMU decompresses and rewrites it normally.
      .write(base + 4, 100 * MiB + 64 * KiB + 1000, 3000)
      // A plain write next to compressed ones, crossing a cluster boundary.
      .write(base + 5, 7 * MiB - 333, 64 * KiB)
      // A compressed write of the last cluster of the disk.
      .write(base + 6, size - 64 * KiB, 64 * KiB, { compressed: true });
    return recipe(
      {
        name,
        description: `qemu-io write -c (${type}) clusters, one partially overwritten${extendedL2 ? ', extended L2' : ''}`,
        features: [
          `compat=${compat}`,
          `compression_type=${type}`,
          'compressed_clusters',
          'unaligned_writes',
          'cross_cluster_writes',
          ...(extendedL2 ? ['extended_l2', 'cluster_size=65536'] : []),
        ],
        virtualSize: size,
      },
      b,
    );
  };
  out.push(qemuIoCompressed('v3-compressed-zlib', '1.1', 'zlib', false, 0xa0));
  out.push(qemuIoCompressed('v3-compressed-zstd', '1.1', 'zstd', false, 0xa8));
  out.push(qemuIoCompressed('v2-compressed-zlib', '0.10', 'zlib', false, 0xb0));
  out.push(qemuIoCompressed('v3-c64k-extl2-compressed', '1.1', 'zlib', true, 0xb8));

  // qemu-img convert -c from a raw file of mixed content: compressed clusters of varied sizes that
  // share sectors and cross host cluster boundaries; incompressible clusters stay uncompressed;
  // zero clusters stay unallocated.
  const rawSize = 6 * MiB;
  const segments: RawSegment[] = [];
  const kinds: RawSegment['fill'][] = ['text', 'random', 'text', 'zero', 'random', 'text', 'text', 'zero'];
  let off = 0;
  let i = 0;
  while (off < rawSize) {
    // Odd segment lengths so clusters mix kinds in different proportions.
    const len = Math.min(rawSize - off, [70_001, 23_457, 150_003, 131_072, 9_999, 61_111][i % 6] ?? 65_536);
    segments.push({ offset: off, length: len, fill: kinds[i % kinds.length] ?? 'text', seed: 1000 + i });
    off += len;
    i++;
  }
  const convert = (name: string, cs: number, type: 'zlib' | 'zstd'): Recipe => {
    const b = new Builder();
    b.push({ tool: 'gen-raw', file: 'source.raw', size: rawSize, segments });
    b.img(
      'convert',
      '-q',
      '-c',
      '-f',
      'raw',
      '-O',
      'qcow2',
      '-o',
      `cluster_size=${cs},compression_type=${type}`,
      'source.raw',
      'image.qcow2',
    );
    return recipe(
      {
        name,
        description: `qemu-img convert -c (${type}, ${cs}-byte clusters) of a ${rawSize / MiB} MiB raw file of mixed random/text/zero content`,
        features: ['compat=1.1', `cluster_size=${cs}`, `compression_type=${type}`, 'compressed_clusters', 'converted'],
        virtualSize: rawSize,
        sideFiles: ['source.raw'],
        equivalentTo: { file: 'source.raw', format: 'raw' },
      },
      b,
    );
  };
  out.push(convert('v3-convert-c-zlib', 64 * KiB, 'zlib'));
  out.push(convert('v3-convert-c-zstd', 64 * KiB, 'zstd'));
  out.push(convert('v3-c4k-convert-c-zlib', 4 * KiB, 'zlib'));
  out.push(convert('v3-c2m-convert-c-zstd', 2 * MiB, 'zstd'));
  return out;
}

function extendedL2Recipes(): Recipe[] {
  const out: Recipe[] = [];
  for (const cs of [16 * KiB, 64 * KiB, 2 * MiB]) {
    const sub = cs / 32;
    const size = cs === 2 * MiB ? 256 * MiB : GiB;
    const base = cs === 2 * MiB ? 0xc0 : cs === 64 * KiB ? 0xc8 : 0xd0;
    const b = new Builder().create('image.qcow2', size, { compat: '1.1', clusterSize: cs, extendedL2: true });
    b.standard(base, cs, size, { extendedL2: true });
    const c = 8 * cs; // a fresh area
    b.write(base + 5, c, sub) // one subcluster of a new cluster
      .write(base + 6, c + 3 * sub + 5, 2 * sub) // unaligned, spanning subclusters 3..5
      .write(base + 7, c + 31 * sub, sub) // last subcluster
      .write(base + 8, c + cs - 100, 200) // crossing into the next cluster's first subcluster
      .zero(c + sub, sub) // zero flag on a subcluster of an allocated cluster
      .zero(c + 10 * sub, 4 * sub) // zero flags on unallocated subclusters
      .write(base + 9, 12 * cs, cs) // a whole cluster...
      .zero(12 * cs + 4 * sub, 2 * sub) // ...with zeroed subclusters inside
      .zero(12 * cs + 20 * sub, sub, { unmap: true })
      .write(base + 10, 14 * cs, 2 * cs)
      .discard(14 * cs, cs, true) // whole-cluster discard
      .discard(15 * cs + 2 * sub, 2 * sub, false) // sub-cluster discard (QEMU 7.2 ignores it)
      .zero(20 * cs, cs, { unmap: true }) // whole-cluster zero on unallocated space
      .zero(21 * cs + 16 * sub, 16 * sub); // second half of an unallocated cluster
    out.push(
      recipe(
        {
          name: `v3-c${sizeName(cs)}-extl2`,
          description: `extended L2 with ${cs}-byte clusters (${sub}-byte subclusters): subcluster writes, zeroes, discards`,
          features: [
            'compat=1.1',
            `cluster_size=${cs}`,
            'extended_l2',
            'subcluster_extents',
            'zero_writes',
            'zero_clusters',
            'discard',
            'unaligned_writes',
            'cross_cluster_writes',
            ...(crossesL2(cs, size, true) ? ['cross_l2_writes'] : []),
          ],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  // Extended L2 overlay over a backing file: partially written clusters read the rest of the
  // cluster from the backing file (unallocated subclusters), no COW of the whole cluster.
  {
    const cs = 64 * KiB;
    const sub = cs / 32;
    const size = 256 * MiB;
    const b = new Builder();
    b.create('base.qcow2', size, { compat: '1.1' });
    b.write(0xe0, 0, 4 * MiB, { file: 'base.qcow2' });
    b.write(0xe1, 9 * MiB, 3 * cs, { file: 'base.qcow2' });
    b.create('image.qcow2', size, { compat: '1.1', extendedL2: true, backing: { file: 'base.qcow2', format: 'qcow2' } });
    b.write(0xe2, 3 * sub, sub)
      .write(0xe3, cs + 7, 100)
      .write(0xe4, 2 * cs + 31 * sub, 2 * sub)
      .zero(4 * cs, 2 * sub)
      .zero(5 * cs, cs)
      .write(0xe5, 9 * MiB + cs + 5 * sub, 10 * sub)
      .discard(9 * MiB + 2 * cs, cs, true);
    out.push(
      recipe(
        {
          name: 'v3-c64k-extl2-backing',
          description: 'extended L2 overlay on a qcow2 backing file: subcluster writes and zeroes over backing data',
          features: [
            'compat=1.1',
            'extended_l2',
            'subcluster_extents',
            'backing=qcow2',
            'backing_depth=1',
            'zero_writes',
            'zero_clusters',
            'discard',
            'unaligned_writes',
            'cross_cluster_writes',
          ],
          virtualSize: size,
          sideFiles: ['base.qcow2'],
        },
        b,
      ),
    );
  }
  return out;
}

function dataFileRecipes(): Recipe[] {
  const out: Recipe[] = [];
  const cases = [
    { name: 'v3-datafile', raw: false, rel: false, base: 0x20 },
    { name: 'v3-datafile-raw', raw: true, rel: false, base: 0x28 },
    { name: 'v3-datafile-relpath', raw: false, rel: true, base: 0x30 },
  ];
  for (const { name, raw, rel, base } of cases) {
    const cs = 64 * KiB;
    const size = 128 * MiB;
    const b = new Builder().create('image.qcow2', size, {
      compat: '1.1',
      dataFile: rel ? 'data.raw' : '{dir}/data.raw',
      dataFileRaw: raw,
    });
    b.standard(base, cs, size)
      .write(base + 5, 10 * MiB, 4 * cs)
      .zero(10 * MiB + cs, cs) // zero flag over allocated data (raw: must reach the data file)
      .zero(20 * MiB, cs) // zero write on unallocated space
      .discard(10 * MiB + 3 * cs, cs, true);
    out.push(
      recipe(
        {
          name,
          description: `external data file${raw ? ' with data_file_raw=on' : ''}${rel ? ', stored as a relative name (QEMU 7.2 resolves it against its working directory)' : ', stored as an absolute path'}`,
          features: [
            'compat=1.1',
            'data_file',
            ...(raw ? ['data_file_raw'] : []),
            ...(rel ? ['data_file_relative'] : []),
            'zero_writes',
            'discard',
            'unaligned_writes',
            'cross_cluster_writes',
          ],
          virtualSize: size,
          sideFiles: ['data.raw'],
          ...(raw ? { equivalentTo: { file: 'data.raw', format: 'raw' as const } } : {}),
        },
        b,
      ),
    );
  }
  return out;
}

function backingRecipes(): Recipe[] {
  const out: Recipe[] = [];
  const cs = 64 * KiB;
  // Raw backing file.
  {
    const size = 64 * MiB;
    const b = new Builder();
    b.img('create', '-q', '-f', 'raw', 'base.raw', String(size));
    b.standard(0x60, cs, size, { t: { file: 'base.raw', format: 'raw' } });
    b.write(0x66, 2 * MiB, 2 * MiB, { file: 'base.raw', format: 'raw' });
    b.create('image.qcow2', size, { compat: '1.1', backing: { file: 'base.raw', format: 'raw' } });
    b.write(0x67, 2 * MiB + 100, 1000) // COW inside a backing-data cluster
      .write(0x68, 3 * MiB - 50, 100) // crosses a cluster boundary inside backing data
      .zero(3 * MiB + cs, cs) // zero over backing data
      .write(0x69, 40 * MiB + 3, 5000);
    out.push(
      recipe(
        {
          name: 'v3-backing-raw',
          description: 'qcow2 overlay on a raw backing file, with partial-cluster writes over backing data',
          features: ['compat=1.1', 'backing=raw', 'backing_depth=1', 'zero_writes', 'zero_clusters', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
          sideFiles: ['base.raw'],
        },
        b,
      ),
    );
  }
  // qcow2 backing, v3 and v2.
  for (const compat of ['1.1', '0.10'] as const) {
    const size = 64 * MiB;
    const v = compat === '1.1' ? 'v3' : 'v2';
    const p = compat === '1.1' ? 0x70 : 0x78;
    const b = new Builder();
    b.create('base.qcow2', size, { compat });
    b.standard(p, cs, size, { t: { file: 'base.qcow2' } });
    b.write(p + 5, 4 * MiB, 1 * MiB, { file: 'base.qcow2' });
    b.create('image.qcow2', size, { compat, backing: { file: 'base.qcow2', format: 'qcow2' } });
    b.write(p + 6, 4 * MiB + 12345, 777).write(p + 7, 5 * MiB - 10, 20).zero(4 * MiB + 2 * cs, cs);
    if (compat === '1.1') b.discard(4 * MiB + 4 * cs, cs, true);
    out.push(
      recipe(
        {
          name: `${v}-backing-qcow2`,
          description: `compat=${compat} overlay on a qcow2 backing file (backing format extension present)`,
          features: [
            `compat=${compat}`,
            'backing=qcow2',
            'backing_depth=1',
            'zero_writes',
            ...(compat === '1.1' ? ['zero_clusters', 'discard'] : []),
            'unaligned_writes',
            'cross_cluster_writes',
          ],
          virtualSize: size,
          sideFiles: ['base.qcow2'],
        },
        b,
      ),
    );
  }
  // Chain of depth 3: image -> mid2 -> mid1 -> base, with different cluster sizes per layer.
  {
    const size = 64 * MiB;
    const b = new Builder();
    b.create('base.qcow2', size, { compat: '1.1' });
    b.write(0x80, 0, 4 * MiB, { file: 'base.qcow2' });
    b.create('mid1.qcow2', size, { compat: '1.1', clusterSize: 4 * KiB, backing: { file: 'base.qcow2', format: 'qcow2' } });
    b.write(0x81, MiB + 1, 3 * MiB, { file: 'mid1.qcow2' });
    b.create('mid2.qcow2', size, { compat: '0.10', clusterSize: 512, backing: { file: 'mid1.qcow2', format: 'qcow2' } });
    b.write(0x82, 2 * MiB - 511, 1023, { file: 'mid2.qcow2' });
    b.write(0x83, 6 * MiB, 3 * MiB, { file: 'mid2.qcow2' });
    b.create('image.qcow2', size, { compat: '1.1', backing: { file: 'mid2.qcow2', format: 'qcow2' } });
    b.write(0x84, 2 * MiB, 5)
      .write(0x85, 7 * MiB + 3, 70 * KiB)
      .zero(3 * MiB, 128 * KiB)
      .write(0x86, 60 * MiB - 1, 2);
    out.push(
      recipe(
        {
          name: 'v3-backing-chain3',
          description: 'backing chain of depth 3 (image -> mid2 [v2, 512 B] -> mid1 [4 KiB] -> base), each layer overwriting the one below',
          features: ['compat=1.1', 'backing=qcow2', 'backing_depth=3', 'zero_writes', 'zero_clusters', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
          sideFiles: ['base.qcow2', 'mid1.qcow2', 'mid2.qcow2'],
        },
        b,
      ),
    );
  }
  // Overlay larger than its backing: guest reads beyond the backing file's end are zeroes.
  {
    const baseSize = 64 * MiB;
    const size = 128 * MiB;
    const b = new Builder();
    b.create('base.qcow2', baseSize, { compat: '1.1' });
    b.write(0x90, baseSize - 3 * cs, 3 * cs, { file: 'base.qcow2' });
    b.write(0x91, 0, 1000, { file: 'base.qcow2' });
    b.create('image.qcow2', size, { compat: '1.1', backing: { file: 'base.qcow2', format: 'qcow2' } });
    // A write straddling the end of the backing file (COW of the last backing cluster + beyond).
    b.write(0x92, baseSize - cs / 2, cs).write(0x93, size - 5000, 5000).write(0x94, 100 * MiB + 1, 10);
    out.push(
      recipe(
        {
          name: 'v3-backing-larger-overlay',
          description: 'overlay of 128 MiB on a 64 MiB qcow2 backing file, with a write straddling the backing end',
          features: ['compat=1.1', 'backing=qcow2', 'backing_depth=1', 'overlay_larger_than_backing', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
          sideFiles: ['base.qcow2'],
        },
        b,
        // Reads between the end of the backing file and the first overlay write are zero.
        [{ offset: baseSize + cs, length: 10 * MiB, pattern: 0 }],
      ),
    );
  }
  return out;
}

function snapshotRecipes(): Recipe[] {
  const out: Recipe[] = [];
  for (const compat of ['0.10', '1.1'] as const) {
    const v = compat === '0.10' ? 'v2' : 'v3';
    const p = compat === '0.10' ? 0x38 : 0x40;
    const cs = 64 * KiB;
    const size = 256 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat });
    b.standard(p, cs, size);
    b.img('snapshot', '-c', 'snap1', 'image.qcow2');
    b.write(p + 5, 10, 5000).write(p + 6, 3 * MiB, 2 * cs);
    b.img('snapshot', '-c', 'snap2', 'image.qcow2');
    b.write(p + 7, 3 * MiB + cs - 1, 2).zero((size / 4) * 3 + 512, cs); // zero over the middle write
    out.push(
      recipe(
        {
          name: `${v}-snapshots`,
          description: `compat=${compat}: two internal snapshots with writes before, between and after them`,
          features: [`compat=${compat}`, 'snapshots=2', 'zero_writes', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  return out;
}

function miscRecipes(): Recipe[] {
  const out: Recipe[] = [];
  const cs = 64 * KiB;
  // Persistent dirty bitmaps.
  {
    const size = 256 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat: '1.1' });
    b.standard(0xf0, cs, size);
    b.img('bitmap', '--add', '--granularity', '64k', 'image.qcow2', 'bm0');
    b.img('bitmap', '--add', '--granularity', '512k', '--disable', 'image.qcow2', 'bm1');
    // qemu-io does update enabled persistent bitmaps (bm0) on these writes.
    b.write(0xf5, 20 * MiB + 3, 3 * cs).write(0xf6, 200 * MiB, 2 * MiB);
    out.push(
      recipe(
        {
          name: 'v3-bitmaps',
          description: 'two persistent dirty bitmaps (bm0 enabled, 64 KiB granularity; bm1 disabled, 512 KiB), writes after adding them',
          features: ['compat=1.1', 'bitmaps=2', 'disabled_bitmaps=1', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  // Lazy refcounts, closed cleanly.
  {
    const size = 128 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat: '1.1', lazyRefcounts: true });
    b.standard(0xd8, cs, size);
    out.push(
      recipe(
        {
          name: 'v3-lazy-refcounts',
          description: 'lazy_refcounts=on (compatible bit 0), closed cleanly',
          features: ['compat=1.1', 'lazy_refcounts', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  // Lazy refcounts, killed: the dirty bit stays set and refcounts are stale.
  {
    const size = 128 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat: '1.1', lazyRefcounts: true });
    b.standard(0xe8, cs, size);
    b.flush();
    // Second session: allocating writes, then SIGKILL before the image is closed.
    b.write(0xee, 30 * MiB + 5, 3 * cs).write(0xef, 64 * MiB - 1, 2);
    b.ioCmd('sigraise 9');
    b.flush();
    const last = b.steps[b.steps.length - 1];
    if (last && last.tool === 'qemu-io') last.expectSignal = 'SIGKILL';
    b.push({ tool: 'assert-byte', file: 'image.qcow2', offset: 79, mask: 1, value: 1, why: 'dirty bit (incompatible bit 0) must be set after SIGKILL' });
    out.push(
      recipe(
        {
          name: 'v3-lazy-dirty',
          description:
            'lazy_refcounts=on, qemu-io killed (SIGKILL) after allocating writes: dirty bit set, refcounts stale; qemu-img check reports corruptions (exit 2) until repaired. Never open it read-write (QEMU would repair it).',
          features: ['compat=1.1', 'lazy_refcounts', 'dirty', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
          checkExitCode: 2,
        },
        b,
      ),
    );
  }
  // Metadata preallocation, v3 and v2.
  for (const compat of ['1.1', '0.10'] as const) {
    const v = compat === '1.1' ? 'v3' : 'v2';
    const size = 64 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat, preallocation: 'metadata' });
    b.standard(compat === '1.1' ? 0x18 : 0x1e, cs, size);
    out.push(
      recipe(
        {
          name: `${v}-prealloc-metadata`,
          description: `compat=${compat}, preallocation=metadata: every cluster allocated at create time`,
          features: [`compat=${compat}`, 'preallocation=metadata', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
        },
        b,
        // Never-written space still reads as zero.
        [{ offset: 8 * MiB, length: 4 * MiB, pattern: 0 }],
      ),
    );
  }
  // Discards and zero writes, v3 and v2.
  for (const compat of ['1.1', '0.10'] as const) {
    const v = compat === '1.1' ? 'v3' : 'v2';
    const p = compat === '1.1' ? 0x98 : 0x9c;
    const size = 128 * MiB;
    const b = new Builder().create('image.qcow2', size, { compat });
    b.write(p, 0, 2 * MiB)
      .discard(cs, cs, true) // whole cluster
      .discard(4 * cs, 3 * cs, true) // several whole clusters
      .discard(10 * cs + 512, 1024, false) // partial: QEMU may ignore it
      .zero(20 * cs, cs) // zero over allocated data (v3: zero flag, cluster kept)
      .zero(22 * cs, 2 * cs, { unmap: true }) // zero + unmap (v3: zero flag, cluster freed)
      .zero(30 * cs + 100, 1000) // sub-cluster zero write (COW-style zeroing of bytes)
      .zero(40 * MiB, 4 * cs) // zero write on unallocated space
      .zero(50 * MiB, cs, { unmap: true })
      .write(p + 1, 2 * MiB - 7, 14)
      .write(p + 2, 3 * cs - 1, cs + 2);
    out.push(
      recipe(
        {
          name: `${v}-discard-zero`,
          description: `compat=${compat}: discards (whole and partial clusters) and zero writes (write -z, write -z -u)`,
          features: [
            `compat=${compat}`,
            'discard',
            'zero_writes',
            ...(compat === '1.1' ? ['zero_clusters'] : []),
            'unaligned_writes',
            'cross_cluster_writes',
          ],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  // 1 TiB sparse image with data above 4 GiB.
  {
    const size = TiB;
    const b = new Builder().create('image.qcow2', size, { compat: '1.1' });
    b.write(0x31, 0, 5000)
      .write(0x32, 4 * GiB - 1000, 3000) // crosses 4 GiB (and a 512 MiB L2 boundary)
      .write(0x33, 5 * GiB, 64 * KiB)
      .write(0x34, 100 * GiB + 12345, 100 * KiB)
      .write(0x35, 1023 * GiB, 1 * MiB)
      .write(0x36, size - 513, 513);
    out.push(
      recipe(
        {
          name: 'v3-sparse-1t',
          description: '1 TiB sparse image with writes at 4 GiB, 5 GiB, 100 GiB, 1023 GiB and the last byte',
          features: ['compat=1.1', 'above_4gib', 'unaligned_writes', 'cross_cluster_writes', 'cross_l2_writes'],
          virtualSize: size,
        },
        b,
      ),
    );
  }
  // LUKS encryption.
  {
    const size = 64 * MiB;
    const secretObj = 'secret,id=sec0,data=password';
    const b = new Builder();
    b.img(
      'create',
      '-q',
      '-f',
      'qcow2',
      '--object',
      secretObj,
      // iter-time=10 ms keeps every later open fast (the default 2 s PBKDF2 budget is per open).
      '-o',
      'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10',
      'image.qcow2',
      String(size),
    );
    // QEMU benchmarks PBKDF2 at create time and sometimes measures 0 ms of thread CPU time; that
    // is transient, so retry (the rule: src/verification/qemu-image.ts).
    b.retry(CALIBRATION_ATTEMPTS - 1, CALIBRATION_FLAKE);
    const open = ['--object', secretObj, '--image-opts', 'driver=qcow2,file.filename=image.qcow2,encrypt.key-secret=sec0'];
    b.standard(0x44, cs, size, { t: { open } });
    b.zero(20 * MiB, cs, { open });
    out.push(
      recipe(
        {
          name: 'v3-luks',
          description: 'LUKS-encrypted qcow2 (passphrase "password"); qemu-img info works without the secret, check/map/qemu-io need it',
          features: ['compat=1.1', 'encryption=luks', 'zero_writes', 'unaligned_writes', 'cross_cluster_writes'],
          virtualSize: size,
          secret: 'password',
          openArgs: ['--object', secretObj, '--image-opts', 'driver=qcow2,file.filename={image},encrypt.key-secret=sec0'],
        },
        b,
      ),
    );
  }
  return out;
}

/** All recipes of the corpus, in build order. */
export const RECIPES: readonly Recipe[] = [
  ...basicRecipes(),
  ...refcountRecipes(),
  ...compressionRecipes(),
  ...extendedL2Recipes(),
  ...dataFileRecipes(),
  ...backingRecipes(),
  ...snapshotRecipes(),
  ...miscRecipes(),
];
