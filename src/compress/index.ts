/**
 * The compression layer for QCOW2 compressed clusters (header byte 104, `compression_type`):
 * 0 = raw deflate, 1 = zstd. Synchronous, so it serves both the reference engine and worker threads.
 *
 * Reading: the exact compressed length is not stored. The descriptor only says where the data
 * starts and how many 512-byte sectors it touches, so the bytes handed in run to the end of the last
 * sector and may hold the start of the next compressed cluster. Decompression stops once a whole
 * cluster has been produced and ignores what follows; input that ends before that is corrupt.
 *
 * Writing, as QEMU 7.2 does it (verified with qemu-io `write -c` and `qemu-img convert -c`):
 * - QEMU compresses into a buffer of cluster_size - 1 bytes and stores the cluster uncompressed
 *   (a normal cluster) when the result does not fit. zlib's deflate cannot report the end of its
 *   stream when that buffer is exactly full, so deflate clusters are stored compressed only up to
 *   cluster_size - 2 bytes, zstd clusters up to cluster_size - 1 bytes. `compressCluster` returns
 *   undefined in the other cases.
 * - Compressed clusters are packed byte after byte (not sector aligned) in the order written,
 *   freely across host cluster boundaries; when something else was allocated in between, the next
 *   one starts a fresh host cluster. The descriptor's sector count is
 *   `compressedAdditionalSectors(offset, length)`. Zero clusters are left unallocated by convert.
 */
import { corrupt, unsupported, usage } from '../errors.js';
import { MIN_CLUSTER_BITS } from '../format/constants.js';
import { MAX_CLUSTER_SIZE } from '../limits.js';
import { deflateCluster, inflateCluster } from './deflate.js';
import { zstdCompressCluster, zstdDecompressCluster } from './zstd.js';

export { ZSTD_LEVEL } from './zstd.js';

export type CompressionType = 0 | 1;

export const COMPRESSION_TYPE_NAMES: Readonly<Record<CompressionType, string>> = { 0: 'deflate', 1: 'zstd' };

const MIN_CLUSTER_SIZE = 2 ** MIN_CLUSTER_BITS;

/** The largest compressed length QEMU stores as a compressed cluster (see the module comment). */
export function maxCompressedLength(type: CompressionType, clusterSize: number): number {
  return type === 0 ? clusterSize - 2 : clusterSize - 1;
}

/**
 * The descriptor's "additional sectors" for compressed data of `length` bytes at `hostOffset`:
 * the number of 512-byte sectors it touches, less one (QEMU: `((off + len - 1) >> 9) - (off >> 9)`).
 */
export function compressedAdditionalSectors(hostOffset: number, length: number): number {
  if (length < 1) throw usage(`compressed data must be at least one byte long (got ${length})`);
  return Math.floor((hostOffset + length - 1) / 512) - Math.floor(hostOffset / 512);
}

/**
 * Decompresses one cluster. `input` is the host data from the descriptor's offset to the end of its
 * last sector (or less, at the end of the file). Returns exactly `clusterSize` bytes, or throws a
 * Qcow2Error 'corrupt' naming `hostOffset`; never more than one cluster's worth is produced.
 */
export function decompressCluster(
  type: CompressionType,
  input: Uint8Array,
  clusterSize: number,
  hostOffset: number,
): Uint8Array {
  checkClusterSize(clusterSize);
  checkType(type);
  const result = type === 0 ? inflateCluster(input, clusterSize) : zstdDecompressCluster(input, clusterSize);
  if (result.ok) return result.data;
  throw corrupt(`${result.reason} [${input.byteLength} bytes read]`, {
    offset: hostOffset,
    field: 'compressed cluster',
    cause: result.cause,
  });
}

/**
 * Compresses one whole cluster (`data.byteLength` is the cluster size) the way QEMU does, or returns
 * undefined when QEMU would store it uncompressed (it does not fit in `maxCompressedLength`).
 */
export function compressCluster(type: CompressionType, data: Uint8Array): Uint8Array | undefined {
  checkClusterSize(data.byteLength);
  checkType(type);
  const packed = type === 0 ? deflateCluster(data) : zstdCompressCluster(data);
  return packed.byteLength <= maxCompressedLength(type, data.byteLength) ? packed : undefined;
}

function checkClusterSize(clusterSize: number): void {
  if (
    !Number.isInteger(clusterSize) ||
    clusterSize < MIN_CLUSTER_SIZE ||
    clusterSize > MAX_CLUSTER_SIZE ||
    (clusterSize & (clusterSize - 1)) !== 0
  ) {
    throw usage(`cluster size must be a power of two from ${MIN_CLUSTER_SIZE} to ${MAX_CLUSTER_SIZE} bytes (got ${clusterSize})`);
  }
}

function checkType(type: number): asserts type is CompressionType {
  if (type !== 0 && type !== 1) {
    throw unsupported(`compression type ${type} is not defined (0 = deflate, 1 = zstd)`, { field: 'compression_type' });
  }
}
