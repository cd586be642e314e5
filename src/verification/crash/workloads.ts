/**
 * The crash workloads: small images whose requests reach every kind of metadata write (new L2
 * tables and L1 entries, refcount blocks and refcount table growth, copy-on-write of partial
 * clusters, compressed clusters, subclusters, snapshot table updates, lazy refcounts).
 */
import type { GuestOp, Workload } from './types.js';

const K = 1024;

/** Writes at scattered places, with flushes between some of them. */
function scattered(clusterSize: number, size: number, count: number, seed: number): GuestOp[] {
  const ops: GuestOp[] = [];
  let x = seed;
  const next = () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x;
  };
  for (let i = 0; i < count; i++) {
    const offset = (next() % (size / 512)) * 512;
    const length = Math.min(size - offset, 512 * (1 + (next() % Math.max(1, (3 * clusterSize) / 512))));
    ops.push({ op: 'write', offset, length, seed: i + seed });
    if (i % 4 === 3) ops.push({ op: 'flush' });
  }
  return ops;
}

export const WORKLOADS: Workload[] = [
  {
    name: 'alloc-cow',
    options: 'compat=1.1,cluster_size=65536',
    size: 4 * 1024 * K,
    clusterSize: 65536,
    before: ['write -P 0x11 0 192k'],
    ops: [
      { op: 'write', offset: 1000, length: 3000, seed: 1 },
      { op: 'write', offset: 300 * K, length: 70 * K, seed: 2 },
      { op: 'flush' },
      { op: 'write', offset: 64 * K + 512, length: 512, seed: 3 },
      { op: 'zero', offset: 128 * K, length: 64 * K },
      { op: 'discard', offset: 0, length: 64 * K },
      { op: 'flush' },
      { op: 'write', offset: 0, length: 100 * K, seed: 4 },
      { op: 'write', offset: 3 * 1024 * K, length: 4 * K, seed: 5 },
    ],
  },
  {
    name: 'small-clusters',
    // 512-byte clusters: an L2 table maps 32 KiB and a refcount block 128 KiB of file, so new L2
    // tables, new refcount blocks and refcount table growth all happen within a few requests.
    options: 'compat=1.1,cluster_size=512',
    size: 512 * K,
    clusterSize: 512,
    ops: [...scattered(512, 512 * K, 24, 7), { op: 'discard', offset: 64 * K, length: 64 * K }, { op: 'flush' }, ...scattered(512, 512 * K, 8, 99)],
  },
  {
    name: 'lazy-refcounts',
    options: 'compat=1.1,cluster_size=4096,lazy_refcounts=on',
    size: 1024 * K,
    clusterSize: 4096,
    // Compressed clusters first: partial writes over them copy their data into new clusters, with
    // no refcount dependency to order the L2 update after the copy (only the data barrier does).
    before: ['write -c -P 0x22 0 64k', 'write -P 0x23 64k 64k'],
    ops: [{ op: 'write', offset: 1024, length: 512, seed: 60 }, { op: 'write', offset: 20 * K, length: 9 * K, seed: 61 }, ...scattered(4096, 1024 * K, 12, 3), { op: 'discard', offset: 0, length: 32 * K }, { op: 'write', offset: 8 * K, length: 8 * K, seed: 50 }],
  },
  {
    name: 'extended-l2',
    options: 'compat=1.1,cluster_size=16384,extended_l2=on',
    size: 1024 * K,
    clusterSize: 16384,
    before: ['write -P 0x33 0 40k'],
    ops: [
      { op: 'write', offset: 1024, length: 700, seed: 1 },
      { op: 'write', offset: 100 * K, length: 2048, seed: 2 },
      { op: 'flush' },
      { op: 'zero', offset: 16 * K + 512, length: 4096 },
      { op: 'write', offset: 200 * K + 100, length: 20 * K, seed: 3 },
      { op: 'discard', offset: 0, length: 16 * K },
      { op: 'flush' },
      { op: 'write', offset: 512, length: 512, seed: 4 },
    ],
  },
  {
    name: 'compressed',
    options: 'compat=1.1,cluster_size=4096',
    size: 512 * K,
    clusterSize: 4096,
    ops: [
      { op: 'compressed', offset: 0, seed: 0 },
      { op: 'compressed', offset: 4 * K, seed: 0 },
      { op: 'compressed', offset: 8 * K, seed: 9 },
      { op: 'flush' },
      { op: 'write', offset: 4 * K + 100, length: 200, seed: 1 },
      { op: 'compressed', offset: 64 * K, seed: 0 },
      { op: 'discard', offset: 0, length: 4 * K },
      { op: 'flush' },
      { op: 'compressed', offset: 12 * K, seed: 0 },
    ],
  },
  {
    name: 'snapshots',
    options: 'compat=1.1,cluster_size=4096',
    size: 512 * K,
    clusterSize: 4096,
    before: ['write -P 0x44 0 32k'],
    ops: [
      { op: 'snapshot', name: 'one' },
      { op: 'write', offset: 2 * K, length: 6 * K, seed: 1 },
      { op: 'flush' },
      { op: 'snapshot', name: 'two' },
      { op: 'write', offset: 0, length: 4 * K, seed: 2 },
      { op: 'delete-snapshot', name: 'one' },
      { op: 'flush' },
      { op: 'write', offset: 16 * K, length: 1 * K, seed: 3 },
      { op: 'delete-snapshot', name: 'two' },
    ],
  },
  {
    name: 'prealloc-zero',
    // Every L2 table exists from the start (preallocation=metadata), so zero writes (which keep
    // the preallocated clusters) dirty many L2 tables without touching a refcount: with tiny
    // caches they are written back in the middle of the workload, long before a flush.
    options: 'compat=1.1,cluster_size=512,preallocation=metadata',
    size: 256 * K,
    clusterSize: 512,
    ops: [
      { op: 'zero', offset: 0, length: 100 * K },
      { op: 'write', offset: 1000, length: 3 * K, seed: 1 },
      { op: 'zero', offset: 150 * K, length: 100 * K },
      { op: 'write', offset: 40 * K, length: 2 * K, seed: 2 },
      { op: 'flush' },
      { op: 'discard', offset: 64 * K, length: 40 * K },
      { op: 'write', offset: 70 * K, length: 3 * K, seed: 3 },
      { op: 'zero', offset: 160 * K, length: 36 * K, unmap: true },
      { op: 'flush' },
      { op: 'zero', offset: 8 * K, length: 60 * K },
      { op: 'write', offset: 200 * K, length: 1 * K, seed: 4 },
    ],
  },
  {
    name: 'bitmaps',
    // Persistent bitmaps kept through the workload: marked in_use before the first change, stored
    // afresh at close (data over two clusters at 512-byte granularity, a table, a directory, then
    // the header), the old ones freed. Every crash state keeps them, in_use or holding every write.
    options: 'compat=1.1,cluster_size=512',
    size: 4 * 1024 * K,
    clusterSize: 512,
    bitmaps: [{ name: 'b0' }, { name: 'fine', granularity: 512 }, { name: 'off', disabled: true }],
    before: ['write -P 0x21 0 16k'],
    ops: [
      { op: 'write', offset: 1000, length: 3000, seed: 1 },
      { op: 'flush' },
      { op: 'discard', offset: 8 * K, length: 4 * K },
      { op: 'write', offset: 3 * 1024 * K + 512, length: 1024, seed: 2 },
    ],
  },
  {
    name: 'growth',
    // 512-byte clusters with 64-bit refcounts: a one-cluster refcount table covers 2 MiB of file.
    // QEMU fills the file to just under that; the first write then grows the refcount table, and
    // the resize grows the L1 table (4 MiB needs 128 entries, 8 MiB 256).
    options: 'compat=1.1,cluster_size=512,refcount_bits=64',
    size: 4 * 1024 * K,
    clusterSize: 512,
    before: ['write -P 0x31 0 1950k'],
    ops: [
      { op: 'write', offset: 2500 * K, length: 40 * K, seed: 1 },
      { op: 'flush' },
      { op: 'resize', size: 8 * 1024 * K },
      { op: 'write', offset: 6 * 1024 * K, length: 4 * K, seed: 2 },
      { op: 'flush' },
      { op: 'write', offset: 1000, length: 2000, seed: 3 },
      { op: 'write', offset: 7 * 1024 * K + 512, length: 1024, seed: 4 },
    ],
  },
  {
    name: 'prealloc-resize',
    // qemu-img resize --preallocation=falloc, then full, then metadata: the new clusters' storage
    // (fallocate, zeros written) comes before the L2 entries that point to it, so no state maps a
    // cluster whose bytes are not zeros yet. The partial cluster at the old end is copied. Writes
    // into the new areas follow.
    options: 'compat=1.1,cluster_size=4096',
    size: 510 * K,
    clusterSize: 4096,
    before: ['write -P 0x71 0 16k', 'write -P 0x72 500k 10k'],
    ops: [
      { op: 'resize', size: 700 * K, preallocation: 'falloc' },
      { op: 'write', offset: 600 * K, length: 6 * K, seed: 1 },
      { op: 'flush' },
      { op: 'resize', size: 900 * K, preallocation: 'full' },
      { op: 'write', offset: 509 * K, length: 2 * K, seed: 2 },
      { op: 'flush' },
      { op: 'resize', size: 1000 * K, preallocation: 'metadata' },
      { op: 'write', offset: 950 * K, length: 1 * K, seed: 3 },
    ],
  },
  ...(['off', 'on'] as const).map(
    (raw): Workload => ({
      name: raw === 'on' ? 'data-file-raw' : 'data-file',
      // Guest data lives in an external data file, flushed on its own: data there must be durable
      // before the L2 entries in the image that point to it.
      options: `compat=1.1,cluster_size=4096,data_file=image.data,data_file_raw=${raw}`,
      size: 512 * K,
      clusterSize: 4096,
      dataFile: 'image.data',
      before: ['write -P 0x61 0 16k'],
      ops: [
        { op: 'write', offset: 1000, length: 6000, seed: 1 },
        { op: 'write', offset: 100 * K, length: 12 * K, seed: 2 },
        { op: 'flush' },
        { op: 'zero', offset: 4 * K, length: 8 * K },
        { op: 'discard', offset: 100 * K, length: 4 * K },
        { op: 'write', offset: 300 * K + 512, length: 1024, seed: 3 },
        { op: 'flush' },
        { op: 'write', offset: 2048, length: 512, seed: 4 },
        // Back into the discarded cluster: the rest of it must read as zeros, not as the old data
        // still in the data file, whatever lands.
        { op: 'write', offset: 100 * K + 1024, length: 512, seed: 5 },
        { op: 'zero', offset: 200 * K, length: 8 * K, unmap: true },
      ],
    }),
  ),
  {
    name: 'v2',
    options: 'compat=0.10,cluster_size=4096',
    size: 512 * K,
    clusterSize: 4096,
    before: ['write -P 0x55 0 16k'],
    ops: [
      { op: 'write', offset: 1000, length: 9000, seed: 1 },
      { op: 'flush' },
      { op: 'zero', offset: 4 * K, length: 4 * K },
      { op: 'write', offset: 256 * K, length: 4 * K, seed: 2 },
    ],
  },
];

/**
 * For error injection: refcount table and L1 growth; an external data file; a workload whose requests make every other
 * kind of tagged write (L2 updates, refcount blocks and table entries, L1 updates, header and
 * snapshot table writes, data) and flushes; one with lazy refcounts (header writes for the dirty bit).
 */
export const FAULT_WORKLOADS: Workload[] = [
  WORKLOADS.find((w) => w.name === 'growth')!,
  WORKLOADS.find((w) => w.name === 'data-file-raw')!,
  {
    name: 'metadata-mix',
    // 64-bit refcounts in 512-byte clusters: a refcount block covers 32 KiB of file, so the
    // 64 KiB write below needs new blocks and refcount table entries.
    options: 'compat=1.1,cluster_size=512,refcount_bits=64',
    size: 256 * K,
    clusterSize: 512,
    ops: [
      ...scattered(512, 256 * K, 10, 5),
      { op: 'write', offset: 128 * K, length: 64 * K, seed: 69 },
      { op: 'snapshot', name: 's1' },
      { op: 'write', offset: 1000, length: 3000, seed: 70 },
      { op: 'compressed', offset: 100 * K, seed: 0 },
      { op: 'flush' },
      { op: 'delete-snapshot', name: 's1' },
      { op: 'discard', offset: 0, length: 8 * K },
      ...scattered(512, 256 * K, 6, 77),
      { op: 'flush' },
    ],
  },
  {
    name: 'lazy-mix',
    options: 'compat=1.1,cluster_size=4096,lazy_refcounts=on',
    size: 512 * K,
    clusterSize: 4096,
    before: ['write -c -P 0x22 0 16k'],
    ops: [...scattered(4096, 512 * K, 8, 11), { op: 'discard', offset: 0, length: 8 * K }, { op: 'write', offset: 1000, length: 100, seed: 3 }],
  },
];
