// Shared helpers for the benchmarks: fixture images (made once under bench/.cache), page-cache
// warming, timed runs of our command and of QEMU's, medians. Plain Node ESM; needs `npm run build`.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
export const QCOW2 = join(REPO, 'bin', 'qcow2');
export const CACHE = process.env.QCOW2_BENCH_CACHE ?? join(REPO, 'bench', '.cache');
const MiB = 1 << 20;
const GiB = 1 << 30;

/** Sizes and counts for a full run or a --quick smoke run. */
export function scale(quick) {
  return quick
    ? { label: 'quick', imageBytes: 64 * MiB, convertBytes: 32 * MiB, requests: 5000, requestsD1: 2000, rounds: 1 }
    : { label: 'full', imageBytes: GiB, convertBytes: GiB, requests: 75000, requestsD1: 30000, rounds: 3 };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  return r.stdout ?? '';
}

/**
 * Syncs, drops FILE from the page cache (GNU dd's iflag=nocache, POSIX_FADV_DONTNEED) and reads it back
 * with `cat FILE > /dev/null`. Dropping first matters: how a file's pages were first cached (one
 * qemu-io write, or readahead) decides the size of the page-cache folios, and a copy out of small
 * folios costs up to 40% more here, so two files holding the same bytes could time differently.
 */
export function warm(path) {
  // Write back what earlier runs left dirty first, so that no run pays for another's writeback.
  execFileSync('sync', [], { stdio: 'inherit' });
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('cat', [path], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Wall-clock seconds of one command (process start to exit). */
export function timeCommand(cmd, args) {
  const t0 = process.hrtime.bigint();
  run(cmd, args);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const COMPLETED = /^Run completed in ([0-9.]+) seconds\.$/m;

/** Runs a `bench`-style command and returns the seconds it reports on its `Run completed` line. */
export function benchSeconds(cmd, args) {
  const out = run(cmd, args);
  const m = COMPLETED.exec(out);
  if (!m) throw new Error(`no 'Run completed' line from ${cmd} ${args.join(' ')}:\n${out}`);
  return Number(m[1]);
}

let registered;
/** Whether ./bin/qcow2 knows `bench` (src/cli/main.ts registers it); else bench/qcow2-bench.mjs runs it. */
function benchRegistered() {
  if (registered === undefined) {
    registered = / {2}bench /.test(spawnSync(process.execPath, [QCOW2, 'help'], { encoding: 'utf8' }).stdout ?? '');
    if (!registered) process.stderr.write('bench: ./bin/qcow2 has no bench subcommand yet; running bench/qcow2-bench.mjs\n');
  }
  return registered;
}

/** The command line running `qcow2 ARGS`. */
export function ours(args) {
  if (args[0] === 'bench' && !benchRegistered()) return [process.execPath, [join(REPO, 'bench', 'qcow2-bench.mjs'), ...args.slice(1)]];
  return [process.execPath, [QCOW2, ...args]];
}

/** Makes `path` with `make(tmpPath)` unless it exists (atomic rename, so a killed run leaves no half file). */
export function fixture(path, make) {
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  process.stderr.write(`bench: creating ${path}\n`);
  make(tmp);
  renameSync(tmp, path);
  return path;
}

/** A qcow2 image with every cluster allocated and written (qemu-io write -P 1 over the whole disk). */
export function allocatedImage(bytes) {
  return fixture(join(CACHE, `allocated-${bytes}.qcow2`), (tmp) => {
    run('qemu-img', ['create', '-q', '-f', 'qcow2', tmp, String(bytes)]);
    run('qemu-io', ['-f', 'qcow2', '-c', `write -P 1 0 ${bytes}`, tmp]);
  });
}

/** A qcow2 image created with preallocation=full (metadata and data clusters allocated up front). */
export function preallocatedImage(bytes) {
  return fixture(join(CACHE, `prealloc-${bytes}.qcow2`), (tmp) => {
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'preallocation=full', tmp, String(bytes)]);
  });
}

/** The raw equivalent of allocatedImage(bytes). */
export function allocatedRaw(bytes) {
  const image = allocatedImage(bytes);
  return fixture(join(CACHE, `allocated-${bytes}.raw`), (tmp) => {
    run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, tmp]);
  });
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but ' +
  'have an they you were her she there been one all we their has would when if so no will can more ' +
  'cluster image table refcount header offset backing snapshot compressed allocation guest host ' +
  'qemu block device sector metadata write read flush zero discard entry bitmap extension format'
).split(' ');

/** Deterministic English-like text (a seeded generator over a small vocabulary). */
function fillText(buf, seed) {
  let state = seed >>> 0 || 1;
  let pos = 0;
  let col = 0;
  while (pos < buf.length) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const word = WORDS[state % WORDS.length];
    const sep = col > 70 ? '\n' : state & 0x100 ? ', ' : ' ';
    col = sep === '\n' ? 0 : col + word.length + sep.length;
    pos += buf.write(word + sep, pos, 'latin1');
  }
}

/** A raw file, half random and half text, alternating by MiB. */
export function mixedRaw(bytes) {
  return fixture(join(CACHE, `mixed-${bytes}.raw`), (tmp) => {
    const fd = openSync(tmp, 'w');
    try {
      const chunk = Buffer.alloc(MiB);
      for (let i = 0; i < bytes / MiB; i++) {
        if (i % 2 === 0) randomFillSync(chunk);
        else fillText(chunk, i * 2654435761);
        writeSync(fd, chunk, 0, chunk.length, i * MiB);
      }
    } finally {
      closeSync(fd);
    }
  });
}

/** mixedRaw(bytes) compressed by qemu-img convert -c (the input of the decompression benchmark). */
export function compressedImage(bytes) {
  const raw = mixedRaw(bytes);
  return fixture(join(CACHE, `mixed-${bytes}.compressed.qcow2`), (tmp) => {
    run('qemu-img', ['convert', '-W', '-m', '16', '-c', '-f', 'raw', '-O', 'qcow2', raw, tmp]);
  });
}

/** A scratch path under the cache, removed before use. */
export function scratch(name) {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `scratch-${process.pid}-${name}`);
  rmSync(path, { force: true });
  return path;
}

/**
 * Runs `ours()` and `peer()` alternately for `rounds` rounds (who goes first alternates too), each
 * preceded by `before()` (page-cache warming), and returns the medians of what they return.
 */
export function alternate(rounds, before, oursFn, peerFn) {
  const a = [];
  const b = [];
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours'];
    for (const who of order) {
      before();
      if (who === 'ours') a.push(oursFn());
      else b.push(peerFn());
    }
  }
  return { ours: median(a), peer: median(b), oursAll: a, peerAll: b };
}
