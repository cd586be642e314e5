// The ublk rows: `qcow2 ublk add` (/dev/ublkbN) against qemu-nbd + the kernel nbd client on the
// same qcow2 image and against loop (--direct-io=on) on a raw file, all measured by fio with
// libaio, O_DIRECT, QD128, one job, inside ONE boot of the 6.12 VM of test/support/vm.ts (the host
// kernel has no ublk and no nbd).
//
// Host side (this file): boots the VM once for every ublk row the run asked for, with
// `node bench/ublk-guest.mjs CONFIG` as the command, and turns what the guest reports into the
// table rows of table.mjs (two rows per workload: ours vs qemu-nbd, ours vs loop).
// runInVm is TypeScript (test/support/vm.ts): it is imported in place through the module hooks of
// bench/ublk-ts-hooks.mjs (node:module register(); TypeScript's transpileModule, no build step,
// import.meta.url unchanged so vm.ts finds test/vm/init and guest-run as under vitest).
//
// Guest side (bench/ublk-guest.mjs): a tmpfs at /bench holds the images (RAM is the "disk", so the
// rows measure the servers, not a disk): a preallocated qcow2 (qemu-img create -o
// preallocation=full), its raw twin for loop (qemu-img create -f raw -o preallocation=full), and
// per run a fresh empty qcow2 (a fresh sparse raw file for loop). Each round runs every workload
// once per contestant, the order of the three rotating from round to round (each goes first once
// every three rounds); each run attaches its device, runs fio, detaches. Medians over the rounds.
//
// Our server is run from a snapshot of dist/, bin/, native/build/Release and test/ublk/entry.mjs
// taken at the start (bench/.cache/ublk-snap-PID), so that a rebuild by someone else during the
// run cannot change or break it; `./bin/qcow2 ublk` once the CLI has the command, else
// test/ublk/entry.mjs (which runs it from dist/).
//
// Knobs (environment):
//   QCOW2_BENCH_UBLK_PROFILE=DIR  the guest writes into host DIR (made if missing): a V8 CPU profile
//                                 of each of our servers (node --cpu-prof, open in Chrome DevTools),
//                                 and, if `perf` runs in the guest, `perf record -a -g` of one run
//                                 per row and contestant (perf-ROW-WHO.data; see `perf report -i`).
//   QCOW2_BENCH_UBLK_RUNTIME=S    seconds of measured fio I/O per run (default 6, quick 2)
//   QCOW2_BENCH_UBLK_RAMP=S       fio --ramp_time (default 12, quick 1), the same for all three: our
//                                 server is a fresh Node process per run, and under TCG its JIT
//                                 takes 10-20 s to reach steady state (with 4 s, ours measured
//                                 0.3-0.7x of what the same server does after 20 s)
//   QCOW2_BENCH_UBLK_MEM=MiB      guest RAM (default 8192, quick 2048); the images live on a tmpfs of
//                                80% of it, which must hold both preallocated images (2 GiB) and
//                                the empty row's writes of one run (loop: ~2 GiB in a round)
//   QCOW2_BENCH_UBLK_NODE_OPTIONS=...  NODE_OPTIONS of our server only (e.g. --v8-pool-size=1,
//                                 --max-semi-space-size=64): to see what V8's GC and JIT cost it
//   QCOW2_BENCH_UBLK_BUILD=DIR    take our server from the built checkout DIR (a git worktree of
//                                 another commit with its dist/ and native/build) instead of this one
//   QCOW2_VM_VERBOSE=1            the guest console on stderr as it comes (test/support/vm.ts)
//
// Run: node bench/run.mjs [--quick] [--json] [ublk-ROW ...]   (or node bench/ublk-rows.mjs ...);
// naming only some ublk rows runs only their workloads. --quick: 128 MiB images, 1 round, fio 1+2 s
// (about 2.5 min for all rows; a smoke run). Full: 1 GiB images, 3 rounds, fio 12+6 s, about 20 min.
// The commands (printed per row on stderr, and in --json):
//   ours: node ENTRY ublk add /bench/prealloc.qcow2   (ENTRY: the snapshot's bin/qcow2 or entry.mjs)
//   peer: qemu-nbd -c /dev/nbd0 --cache=writeback -f qcow2 --pid-file=F /bench/prealloc.qcow2
//   loop: losetup --direct-io=on -f --show /bench/prealloc.raw
//   fio --name=ublk-bench --ioengine=libaio --direct=1 --iodepth=128 --numjobs=1 --rw=RW --bs=BS
//       --time_based --runtime=6 --ramp_time=12 --group_reporting --output-format=json
//       [--norandommap --randrepeat=0] --filename=DEV
// Besides throughput, each run reports fio's completion latency (p50/p99) and the server's CPU per
// request from its threads' utime+stime over the measured part (ours split into the JS thread, the
// ublk queue thread and the helpers: V8's compiler/GC threads, libuv's pool, io_uring workers).
//
// Measured 2026-12-02 (2-core host without KVM, busy with other VMs; guest 2 vCPUs, 5 GiB):
//   fio 4+8 s, 3 rounds, all rows (ours/qemu-nbd; ours/loop):
//     randread-4k 589 vs 805 req/s 0.73x, loop 9.1k 0.06x | randwrite-4k 422 vs 597 0.71x, loop 7.0k 0.06x
//     seqread-512k 31.2 vs 16.0 MiB/s 1.95x, loop 356 0.09x | seqwrite-512k 26.6 vs 18.5 1.44x, loop 367 0.07x
//     randwrite-4k-empty 36.7 vs 458 req/s 0.08x, loop 8.5k 0.004x
//   fio 12+6 s, 3 rounds, the 4 KiB preallocated rows only (server of commit a95fd0a):
//     randread-4k 1835 vs 1376 req/s 1.33x (rounds 1.91, 1.14, 1.59), loop 14.0k 0.13x
//     randwrite-4k 1333 vs 1184 req/s 1.13x (rounds 0.31, 2.47, 1.16), loop 12.6k 0.11x
// Measured 2026-12-02 later (same host, as busy), after allocating writes zero the cluster with
// fallocate and write only the guest's 4 KiB (commit e34fc90), 3 rounds, fio 12+6 s:
//     randwrite-4k-empty (1 GiB image) 40.5 vs 150 req/s 0.27x (was 0.08x); randwrite-4k 1507 vs 334 4.51x
//   then the empty row as it is now (64 GiB image, ramp 45 s; QEMU's default L2 cache, commit 4b24426):
//     randwrite-4k-empty 565 vs 787 req/s 0.72x (rounds: 10 vs 290 in the first, the host at its busiest;
//     902 vs 983; 565 vs 787); our server's CPU per request 1.1-1.7 ms against qemu-nbd's 0.8-1.0 ms.
// No goal met except the 512 KiB rows against qemu-nbd. What limits ours: (1) warm-up: with a 4 s
// ramp the helper threads (V8's concurrent compiler) cost 300-2500 us per request and ours did
// 267-1049 req/s; with 12 s they cost 13-93 us and ours did 1283-2182. (2) Then the JS thread:
// 410-700 us of (TCG) CPU per 4 KiB read against qemu-nbd's 360-870 us in all of its threads; all
// vCPUs share one host thread under TCG, so CPU per request is the throughput. (3) Allocating writes
// (the empty image): 10-66 ms of JS-thread CPU per 4 KiB write, serialized under the metadata mutex
// (src/optimized/write.js writeAllocating: a whole-cluster plan, 64 KiB written per 4 KiB, the
// profile's top: planClusterWrite, writeSync, readInCluster, the table cache), where qemu-nbd spends
// 1.3-1.9 ms. (4) loop is in-kernel, 10x qemu-nbd here: >= 3x qemu-nbd and >= 0.5x loop cannot both
// hold under TCG. Run-to-run noise on this host is up to 4x (other VMs compete for the 2 cores).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, median, REPO } from './lib.mjs';

const MiB = 1 << 20;

/**
 * The workloads. `image`: 'prealloc' (one image for all runs) or 'empty' (a fresh one per run).
 * Goals from the issue: >= 3x qemu-nbd on the 4 KiB rows of the preallocated image, >= 1.3x on the
 * empty image, >= 0.5x loop on every row. The issue sets no goal for the 512 KiB rows against
 * qemu-nbd: 1x (not slower) is this file's choice.
 */
export const WORKLOADS = [
  { id: 'randread-4k', rw: 'randread', bs: '4k', image: 'prealloc', unit: 'req/s', goalNbd: 3, what: '4 KiB random reads, preallocated image' },
  { id: 'randwrite-4k', rw: 'randwrite', bs: '4k', image: 'prealloc', unit: 'req/s', goalNbd: 3, what: '4 KiB random writes, preallocated image' },
  { id: 'seqread-512k', rw: 'read', bs: '512k', image: 'prealloc', unit: 'MiB/s', goalNbd: 1, what: '512 KiB sequential reads, preallocated image' },
  { id: 'seqwrite-512k', rw: 'write', bs: '512k', image: 'prealloc', unit: 'MiB/s', goalNbd: 1, what: '512 KiB sequential writes, preallocated image' },
  // The empty image is 64 GiB (sparse; 8 GiB with --quick) and the ramp at least 45 s: the code
  // path of an allocating write only reaches steady state after some thousands of requests under
  // TCG (at a 12 s ramp ours still ran partly unoptimized: 36 ms of CPU per request, against 5.7 ms
  // at 45 s), and on a 1 GiB image (16k clusters) those would already have filled much of it, so
  // that the measured part no longer allocated. Same image and ramp for all three contestants.
  { id: 'randwrite-4k-empty', rw: 'randwrite', bs: '4k', image: 'empty', unit: 'req/s', goalNbd: 1.3, what: '4 KiB random writes, empty 64 GiB image', emptyScale: 64, minRamp: 45 },
];

/** fio's ramp for workload w: the run's, or the workload's minimum (full runs only). */
export function rampOf(w, plan) {
  return plan.quick ? plan.ramp : Math.max(plan.ramp, w.minRamp ?? 0);
}

/** Bytes of the image a workload runs on (the empty image is larger, see WORKLOADS). */
export function imageBytesOf(w, plan) {
  return w.image === 'empty' ? plan.imageBytes * (w.emptyScale ?? 1) : plan.imageBytes;
}
const GOAL_LOOP = 0.5;

/** The fio arguments of a workload (the device is appended as --filename=DEV). */
export function fioArgs(w, plan) {
  const runtime = plan.runtime;
  const ramp = rampOf(w, plan);
  const args = [
    '--name=ublk-bench', '--ioengine=libaio', '--direct=1', '--iodepth=128', '--numjobs=1',
    `--rw=${w.rw}`, `--bs=${w.bs}`, '--time_based', `--runtime=${runtime}`, `--ramp_time=${ramp}`,
    '--group_reporting', '--output-format=json',
  ];
  if (w.rw.startsWith('rand')) args.push('--norandommap', '--randrepeat=0');
  return args;
}

/** Sizes of a full or a --quick run (sizes comes from lib.mjs scale()). */
export function ublkPlan(sizes, rounds) {
  const quick = sizes.label === 'quick';
  const env = (name, dflt) => (process.env[name] ? Number(process.env[name]) : dflt);
  return {
    quick,
    rounds,
    imageBytes: quick ? 128 * MiB : 1024 * MiB,
    runtime: env('QCOW2_BENCH_UBLK_RUNTIME', quick ? 2 : 6),
    ramp: env('QCOW2_BENCH_UBLK_RAMP', quick ? 1 : 12),
    memMiB: env('QCOW2_BENCH_UBLK_MEM', quick ? 2048 : 8192),
  };
}

const CONTESTANTS = ['ours', 'nbd', 'loop'];
/** Contestant order of round `i`: rotated by one each round. */
export function roundOrder(i) {
  return CONTESTANTS.map((_, k) => CONTESTANTS[(k + i) % CONTESTANTS.length]);
}

/** The names of the table rows of workload w. */
export const rowName = (w, peer) => `ublk-${w.id}${peer === 'loop' ? '-vs-loop' : ''}`;

/** Copies what our server runs from (see the header), and returns the command prefix inside the guest. */
function snapshotOurs() {
  const from = process.env.QCOW2_BENCH_UBLK_BUILD ?? REPO;
  const snap = join(CACHE, `ublk-snap-${process.pid}`);
  rmSync(snap, { recursive: true, force: true });
  mkdirSync(join(snap, 'native', 'build'), { recursive: true });
  mkdirSync(join(snap, 'test', 'ublk'), { recursive: true });
  cpSync(join(from, 'dist'), join(snap, 'dist'), { recursive: true });
  cpSync(join(from, 'bin'), join(snap, 'bin'), { recursive: true });
  cpSync(join(from, 'native', 'build', 'Release'), join(snap, 'native', 'build', 'Release'), { recursive: true });
  cpSync(join(from, 'test', 'ublk', 'entry.mjs'), join(snap, 'test', 'ublk', 'entry.mjs'));
  cpSync(join(from, 'package.json'), join(snap, 'package.json'));
  for (const f of ['dist/cli/ublk.js', 'native/build/Release/qcow2_ublk.node']) {
    if (!existsSync(join(snap, f))) throw new Error(`bench: ${f} is missing: run \`node scripts/build.mjs && node native/build.mjs\``);
  }
  const help = spawnSync(process.execPath, [join(snap, 'bin', 'qcow2'), 'help'], { encoding: 'utf8' }).stdout ?? '';
  const registered = /^ {2}ublk /m.test(help);
  if (!registered) process.stderr.write('bench: ./bin/qcow2 has no ublk subcommand yet; running test/ublk/entry.mjs (dist/)\n');
  return { snap, entry: registered ? join(snap, 'bin', 'qcow2') : join(snap, 'test', 'ublk', 'entry.mjs') };
}

let session;

/** The ublk workloads this process will report: those named on the command line, else all. */
function wantedWorkloads() {
  const args = process.argv.slice(2);
  const named = WORKLOADS.filter((w) => args.includes(rowName(w, 'nbd')) || args.includes(rowName(w, 'loop')));
  return named.length ? named : WORKLOADS;
}

/** Boots the VM once and runs every wanted workload; memoized (the first ublk row pays, the rest read). */
function runSession(sizes, rounds) {
  session ??= (async () => {
    const plan = ublkPlan(sizes, rounds);
    const workloads = wantedWorkloads();
    const { snap, entry } = snapshotOurs();
    const profile = process.env.QCOW2_BENCH_UBLK_PROFILE;
    if (profile) mkdirSync(profile, { recursive: true });
    const nodeOptions = process.env.QCOW2_BENCH_UBLK_NODE_OPTIONS ?? '';
    const config = { ...plan, entry, profile: profile ?? null, nodeOptions, workloads: workloads.map((w) => w.id) };
    if (nodeOptions) process.stderr.write(`bench: ublk: our server runs with NODE_OPTIONS=${nodeOptions}\n`);
    const timeoutMs = (180 + (plan.quick ? 30 : 90) + workloads.reduce((t, w) => t + plan.rounds * CONTESTANTS.length * (plan.runtime + rampOf(w, plan) + 75), 0)) * 1000;
    process.stderr.write(
      `bench: ublk: one VM for ${workloads.length} workload(s) x ${CONTESTANTS.length} contestants x ${plan.rounds} round(s), ` +
        `fio ${plan.ramp}+${plan.runtime} s each (empty image: ramp ${rampOf(WORKLOADS[4], plan)} s), image ${plan.imageBytes / MiB} MiB (empty: x${WORKLOADS[4].emptyScale}), guest ${plan.memMiB} MiB (timeout ${Math.round(timeoutMs / 1000)} s)\n`,
    );
    const { register } = await import('node:module');
    register('./ublk-ts-hooks.mjs', import.meta.url);
    const { runInVm, vmAvailable } = await import('../test/support/vm.ts');
    const ok = vmAvailable();
    if (!ok.ok) throw new Error(`bench: ublk rows need the VM: ${ok.reason}`);
    const cmd = `node ${join(REPO, 'bench', 'ublk-guest.mjs')} '${JSON.stringify(config)}'`;
    const t0 = Date.now();
    let r;
    try {
      r = await runInVm(cmd, { cwd: REPO, timeoutMs, memMiB: plan.memMiB, cpus: 2, writable: profile ? [profile] : [] });
    } finally {
      rmSync(snap, { recursive: true, force: true });
    }
    const mark = r.output.lastIndexOf('UBLK-BENCH-RESULT ');
    for (const line of r.output.split('\n')) if (line.startsWith('ublk-bench:')) process.stderr.write(`bench:   ${line}\n`);
    if (r.status !== 0 || mark < 0) throw new Error(`bench: the ublk guest run failed (status ${r.status}):\n${r.output.slice(-6000)}`);
    const result = JSON.parse(r.output.slice(mark + 'UBLK-BENCH-RESULT '.length).split('\n')[0]);
    process.stderr.write(`bench: ublk: VM run took ${((Date.now() - t0) / 1000).toFixed(0)} s (boot ${(r.bootMs / 1000).toFixed(1)} s)\n`);
    return result;
  })();
  return session;
}

const fmt = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** One table row: workload w, ours against `peer` ('nbd' or 'loop'). */
function ublkRow(w, peer) {
  return {
    name: rowName(w, peer),
    description: `ublk (fio libaio direct QD128, in the VM): ${w.what}, ours vs ${peer === 'nbd' ? 'qemu-nbd + kernel nbd' : 'loop --direct-io=on on raw'}`,
    goal: peer === 'nbd' ? w.goalNbd : GOAL_LOOP,
    async run({ sizes, rounds }) {
      const result = await runSession(sizes, rounds);
      const runs = result.runs.filter((x) => x.workload === w.id);
      if (!runs.length) throw new Error(`bench: no ublk results for ${w.id} (was it asked for?)`);
      const value = (x) => (w.unit === 'req/s' ? x.iops : x.bytesPerSec / MiB);
      const ours = runs.filter((x) => x.who === 'ours').map(value);
      const theirs = runs.filter((x) => x.who === peer).map(value);
      const cmds = result.commands[w.id];
      // Per-run detail on stderr: throughput, completion latency, server CPU per request, guest CPU busy.
      for (const who of ['ours', peer]) {
        const mine = runs.filter((x) => x.who === who);
        const detail = mine
          .map((x) => `${fmt(value(x))} (p50 ${fmt(x.clatP50Us)} us, p99 ${fmt(x.clatP99Us)} us, server ${x.serverCpuUsPerIo === null ? 'kernel' : `${fmt(x.serverCpuUsPerIo)} us/req [main ${fmt(x.serverCpuSplitUs.main)}, queue ${fmt(x.serverCpuSplitUs.queue)}, other ${fmt(x.serverCpuSplitUs.other)}]`}, guest busy ${(x.guestBusy * 100).toFixed(0)}%)`)
          .join('; ');
        process.stderr.write(`bench:   ${who}: ${detail}\n`);
      }
      const peerCmd = cmds[peer];
      process.stderr.write(`bench:   commands: ours: ${cmds.ours}; ${peer}: ${peerCmd}; fio: ${cmds.fio}\n`);
      const o = median(ours);
      const p = median(theirs);
      return {
        unit: w.unit,
        ours: o,
        peer: p,
        ratio: o / p,
        peerName: `${peer === 'nbd' ? 'qemu-nbd + kernel nbd' : 'loop'} (${peerCmd})`,
        commands: [cmds.ours, peerCmd, cmds.fio],
        // table.mjs prints these as "seconds per run"; here they are the per-round throughputs.
        oursAll: ours,
        peerAll: theirs,
      };
    },
  };
}

/** Every ublk row: per workload, ours vs qemu-nbd then ours vs loop. */
export const UBLK_ROWS = WORKLOADS.flatMap((w) => [ublkRow(w, 'nbd'), ublkRow(w, 'loop')]);
