#!/usr/bin/env node
// Runs the benchmarks (all, or the ones named) against their peers and prints a table:
//   npm run build && node bench/run.mjs [--quick] [--rounds N] [--json] [--strict] [--list] [NAME...]
// Ratios are ours/peer in throughput (requests/s, MiB/s, or peer seconds / our seconds for
// convert): above 1 means faster than the peer. Goals live in each benchmark's definition.
import convertCompress from './convert-compress.mjs';
import convertDecompress from './convert-decompress.mjs';
import nbdCompressed8Clients from './nbd-compressed-8-clients.mjs';
import nbdCompressedSeqRead from './nbd-compressed-seq-read.mjs';
import nbdIdleMemory from './nbd-idle-memory.mjs';
import nbdRead4kD16 from './nbd-read-4k-d16.mjs';
import nbdSeqRead64k from './nbd-seq-read-64k.mjs';
import nbdWrite4kD16 from './nbd-write-4k-d16.mjs';
import read4kD16 from './read-4k-d16.mjs';
import seqRead1m from './seq-read-1m.mjs';
import { main } from './table.mjs';
import ublkRows from './ublk-rows.mjs';
import write4kD1 from './write-4k-d1.mjs';
import write4kD16 from './write-4k-d16.mjs';

export const BENCHMARKS = [
  read4kD16, write4kD16, write4kD1, seqRead1m, convertCompress, convertDecompress,
  nbdRead4kD16, nbdWrite4kD16, nbdSeqRead64k, nbdCompressedSeqRead, nbdCompressed8Clients, nbdIdleMemory,
  ...ublkRows,
];

process.exitCode = await main(BENCHMARKS, process.argv.slice(2));
