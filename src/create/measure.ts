/**
 * What `qemu-img measure` (QEMU 7.2) computes, as pure functions: the target's options checked in
 * qcow2_measure's order, the metadata of a fully allocated qcow2 image (qcow2_calc_prealloc_size,
 * qcow2_refcount_metadata_size), the data clusters of a source counted from its block status, and the
 * space persistent bitmaps would take (qcow2_get_persistent_dirty_bitmap_size). raw_measure for raw
 * targets. All sizes are bigints: a fully allocated exabyte image does not fit a double.
 */
import { refcountMetadataClusters } from '../format/refcount.js';
import { usage } from '../errors.js';
import { BITMAP_DIR_ENTRY_FIXED, MIN_CLUSTER_BITS, MIN_CLUSTER_BITS_EXTL2 } from '../format/constants.js';
import { MAX_CLUSTER_BITS, MAX_L1_BYTES } from '../limits.js';
import { luksAreaLength } from '../crypto/luks-keys.js';
import { type CreateOptionSet, luksCreateRequest } from './options.js';

/** QEMU's BlockMeasureInfo. `bitmaps` only when both source and target can hold persistent bitmaps. */
export interface MeasureInfo {
  required: bigint;
  fullyAllocated: bigint;
  bitmaps?: bigint;
}

/** The qcow2 target's options that change the numbers. */
export interface Qcow2MeasureTarget {
  clusterSize: number;
  version: 2 | 3;
  refcountOrder: number;
  extendedL2: boolean;
  /** falloc and full count every data cluster as required. */
  preallocation: 'off' | 'metadata' | 'falloc' | 'full';
  /** With a backing file, every cluster of a source counts (what it shares with it is unknown). */
  hasBackingFile: boolean;
  /** The size option (`--size`, or `-o size=`), 0 when not given. */
  size: bigint;
  /** encrypt.format=luks: the LUKS area, in whole clusters (0 without). */
  luksPayload: bigint;
}

/** A persistent bitmap of the source, as its directory entry says. */
export interface SourceBitmap {
  name: string;
  granularityBits: number;
}

/** What measure needs of a source image. */
export interface MeasureSource {
  /** Virtual size in bytes (bdrv_getlength). */
  size: bigint;
  /** Bytes of data clusters, in target clusters, from {@link countDataClusters}. */
  dataBytes: bigint;
  /** The source's persistent bitmaps; undefined when its format cannot have any (raw, qcow2 v2). */
  bitmaps: readonly SourceBitmap[] | undefined;
}

const roundUp = (n: bigint, to: bigint) => ((n + to - 1n) / to) * to;
const divRoundUp = (n: bigint, d: bigint) => (n + d - 1n) / d;

/**
 * The qcow2 target's options from `-o` and `--size`, checked in qcow2_measure's order.
 * `secret` looks up encrypt.key-secret's secret (a copy, zeroed here) for encrypt.format=luks.
 */
export function qcow2MeasureTarget(set: CreateOptionSet, secret?: (id: string) => Uint8Array): Qcow2MeasureTarget {
  const extendedL2 = set.get('extended_l2')?.bool ?? false;
  // qcow2_opt_get_cluster_size_del: the size's low set bit decides (ctz32), then it must be exactly 2^bits.
  const clusterSize = set.get('cluster_size')?.number ?? 65536n;
  const low32 = clusterSize & 0xffffffffn;
  const bits = low32 === 0n ? 32 : (low32 & -low32).toString(2).length - 1;
  if (bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS || 1n << BigInt(bits) !== clusterSize) {
    throw usage(`Cluster size must be a power of two between ${2 ** MIN_CLUSTER_BITS} and ${2 ** (MAX_CLUSTER_BITS - 10)}k`);
  }
  if (extendedL2 && bits < MIN_CLUSTER_BITS_EXTL2) {
    throw usage(`Extended L2 entries are only supported with cluster sizes of at least ${2 ** MIN_CLUSTER_BITS_EXTL2} bytes`);
  }
  // qcow2_opt_get_version_del: measure knows only "0.10" and "1.1" (create also takes v2, v3).
  const compat = set.get('compat')?.text;
  let version: 2 | 3 = 3;
  if (compat === '0.10') version = 2;
  else if (compat !== undefined && compat !== '1.1') throw usage(`Invalid compatibility level: '${compat}'`);
  const refcountBits = set.get('refcount_bits')?.number ?? 16n;
  if (refcountBits > 64n || refcountBits === 0n || (refcountBits & (refcountBits - 1n)) !== 0n) {
    throw usage('Refcount width must be a power of two and may not exceed 64 bits');
  }
  if (version < 3 && refcountBits !== 16n) {
    throw usage('Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)');
  }
  const prealloc = set.get('preallocation')?.text ?? 'off';
  if (prealloc !== 'off' && prealloc !== 'metadata' && prealloc !== 'falloc' && prealloc !== 'full') {
    throw usage(`invalid parameter value: ${prealloc}`);
  }
  // The LUKS area is added to both sizes, whole clusters (qcrypto_block_calculate_payload_offset).
  let luksPayload = 0n;
  if (set.get('encrypt.format')?.text === 'luks') {
    const request = luksCreateRequest(set);
    if (secret === undefined) throw usage(`No secret with id '${request.keySecret}'`);
    secret(request.keySecret).fill(0);
    luksPayload = roundUp(BigInt(luksAreaLength(request)), clusterSize);
  }
  return {
    clusterSize: Number(clusterSize),
    version,
    refcountOrder: refcountBits.toString(2).length - 1,
    extendedL2,
    preallocation: prealloc,
    hasBackingFile: set.get('backing_file') !== undefined,
    size: set.get('size')?.number ?? 0n,
    luksPayload,
  };
}

/** qcow2_calc_prealloc_size: the file size of a fully allocated image of `totalSize` bytes. */
export function qcow2PreallocSize(totalSize: bigint, clusterSize: number, refcountOrder: number, extendedL2: boolean): bigint {
  const cs = BigInt(clusterSize);
  const aligned = roundUp(totalSize, cs);
  const l2e = extendedL2 ? 16n : 8n;
  let meta = cs; // header
  const nl2e = roundUp(aligned / cs, cs / l2e);
  meta += nl2e * l2e;
  const nl1e = roundUp((nl2e * l2e) / cs, cs / 8n);
  meta += nl1e * 8n;
  const { blocks, table } = refcountMetadataClusters((meta + aligned) / cs, clusterSize, refcountOrder, false);
  return meta + (blocks + table) * cs + aligned;
}

/** One answer of block status over the whole chain (bdrv_block_status_above down to no base). */
export interface ChainBlockStatus {
  /** Bytes it covers from the offset asked. */
  pnum: number;
  zero: boolean;
  /** BDRV_BLOCK_DATA and BDRV_BLOCK_ALLOCATED. */
  data: boolean;
}

/**
 * qcow2_measure's loop over the source: zero ranges are skipped, each data range counts from the
 * start of its first target cluster to the end of its last one, and the walk goes on from there.
 */
export async function countDataClusters(size: number, clusterSize: number, status: (offset: number, bytes: number) => Promise<ChainBlockStatus>): Promise<bigint> {
  let required = 0n;
  let pnum = 0;
  for (let offset = 0; offset < size; offset += pnum) {
    const s = await status(offset, size - offset);
    pnum = s.pnum;
    if (s.zero) continue;
    if (s.data) {
      pnum = Math.ceil((offset + pnum) / clusterSize) * clusterSize - offset;
      required += BigInt((offset % clusterSize) + pnum);
    }
  }
  return required;
}

/** qcow2_get_persistent_dirty_bitmap_size, for bitmaps of a `size`-byte disk in a target of `clusterSize`. */
export function bitmapsSize(bitmaps: readonly SourceBitmap[], size: bigint, clusterSize: number): bigint {
  const cs = BigInt(clusterSize);
  let total = 0n;
  let directory = 0n;
  for (const bm of bitmaps) {
    const bits = divRoundUp(size, 1n << BigInt(bm.granularityBits));
    const clusters = divRoundUp(divRoundUp(bits, 8n), cs);
    total += clusters * cs; // the whole bitmap allocated
    total += roundUp(clusters * 8n, cs); // its bitmap table
    directory += roundUp(BigInt(BITMAP_DIR_ENTRY_FIXED + new TextEncoder().encode(bm.name).byteLength), 8n);
  }
  return total + roundUp(directory, cs);
}

/** qcow2_measure. */
export function measureQcow2(target: Qcow2MeasureTarget, source: MeasureSource | undefined): MeasureInfo {
  const cs = BigInt(target.clusterSize);
  let virtualSize = roundUp(target.size, cs);
  const l2e = target.extendedL2 ? 16n : 8n;
  const l2Tables = divRoundUp(virtualSize / cs, cs / l2e);
  // QEMU checks the L1 table's size (8-byte entries), whatever the L2 entry size.
  if (l2Tables * 8n > BigInt(MAX_L1_BYTES)) throw usage('The image size is too large (try using a larger cluster size)');
  let required = 0n;
  if (source !== undefined) {
    virtualSize = roundUp(source.size, cs);
    required = target.hasBackingFile ? virtualSize : source.dataBytes;
  }
  if (target.preallocation === 'full' || target.preallocation === 'falloc') required = virtualSize;
  const fullyAllocated = qcow2PreallocSize(virtualSize, target.clusterSize, target.refcountOrder, target.extendedL2) + target.luksPayload;
  const info: MeasureInfo = { required: fullyAllocated - virtualSize + required, fullyAllocated };
  if (target.version >= 3 && source?.bitmaps !== undefined) info.bitmaps = bitmapsSize(source.bitmaps, source.size, target.clusterSize);
  return info;
}

/** raw_measure: the source's size, or the size option rounded up to 512-byte sectors. */
export function measureRaw(set: CreateOptionSet, source: MeasureSource | undefined): MeasureInfo {
  const required = source !== undefined ? source.size : roundUp(set.get('size')?.number ?? 0n, 512n);
  return { required, fullyAllocated: required };
}
