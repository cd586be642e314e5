// Shared helpers for the NBD benchmarks: start our server (`qcow2 nbd`) or qemu-nbd on a unix socket,
// wait until it accepts, stop it; run fio's nbd engine against it and read the aggregate throughput;
// open N idle NBD connections (handshake done) and read the server's VmRSS.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CACHE, median, QCOW2, scratch, warm } from './lib.mjs';

const MiB = 1 << 20;
/**
 * Our command: ./bin/qcow2, or QCOW2_BENCH_QCOW2 (e.g. bin/qcow2 of a copy of bin/, dist/ and
 * native/build/ taken once, so that a rebuild of dist/ by someone else mid-run cannot break it).
 */
const OURS = process.env.QCOW2_BENCH_QCOW2 ?? QCOW2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Seconds of fio I/O per run (after a short ramp); a full run of all NBD rows stays under ~4 min. */
export function fioTimes(sizes) {
  return sizes.label === 'quick' ? { runtime: 1, ramp: 0 } : { runtime: 4, ramp: 0.5 };
}

/** The command line of a server: ours (`node bin/qcow2 nbd`) or the peer (`qemu-nbd`). */
export function serverCommand(who, { image, sock, shared, persistent = true, readOnly = false, size }) {
  // The ceiling: nbdkit's null plugin does no I/O at all (reads are zeros, writes are dropped), in C,
  // with a thread per request: how fast the client goes against a server that costs nothing.
  if (who === 'ceiling') return ['nbdkit', ['-U', sock, '--exit-with-parent', '-t', '16', 'null', `size=${size}`]];
  const common = ['-k', sock, '-f', 'qcow2'];
  if (persistent) common.push('-t');
  if (shared !== undefined) common.push('-e', String(shared));
  if (readOnly) common.push('-r');
  if (who === 'ours') return [process.execPath, [OURS, 'nbd', ...common, image]];
  return ['qemu-nbd', [...common, '--cache=writeback', image]];
}

/** Whether a unix socket answers with the NBD greeting ("NBDMAGIC"). */
function probe(sock) {
  return new Promise((resolve) => {
    const s = connect(sock);
    let got = Buffer.alloc(0);
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.on('error', () => done(false));
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 8) done(got.subarray(0, 8).toString('latin1') === 'NBDMAGIC');
    });
  });
}

/**
 * Starts a server and resolves once its socket answers the NBD greeting (the probe connection is
 * closed again and given time to be reaped, so a server with -e 1 has its slot free for the client).
 */
export async function startServer(who, opts) {
  const sock = opts.sock ?? scratch(`${who}.sock`);
  rmSync(sock, { force: true });
  const [cmd, args] = serverCommand(who, { ...opts, sock });
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  let exited = null;
  const exit = new Promise((r) => proc.on('exit', (code, signal) => r((exited = { code, signal }))));
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) throw new Error(`${cmd} ${args.join(' ')} exited (${JSON.stringify(exited)}) before serving:\n${stderr}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${cmd} ${args.join(' ')}: socket ${sock} not serving after 20 s\n${stderr}`);
    }
    if (existsSync(sock) && (await probe(sock))) break;
    await sleep(25);
  }
  await sleep(150);
  return {
    who,
    pid: proc.pid,
    sock,
    command: `${cmd === process.execPath ? 'node' : cmd} ${args.join(' ')}`,
    stderr: () => stderr,
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await exit;
      clearTimeout(t);
      rmSync(sock, { force: true });
    },
  };
}

/** The fio arguments of a job against SOCK (the socket path is appended by runFio). */
export function fioArgs({ rw, bs, iodepth, numjobs = 1, runtime, ramp, extra = [] }) {
  const args = [
    '--name=nbd', '--ioengine=nbd', `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${iodepth}`,
    `--numjobs=${numjobs}`, '--group_reporting', '--time_based', `--runtime=${runtime}`,
    '--norandommap', '--output-format=json', ...extra,
  ];
  if (ramp) args.push(`--ramp_time=${ramp}`);
  return args;
}

/** Runs fio against the server on SOCK; returns aggregate { bytesPerSec, iops } of reads + writes. */
export function runFio(args, sock) {
  const full = [...args, `--uri=nbd+unix:///?socket=${sock}`];
  const r = spawnSync('fio', full, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  const out = r.stdout ?? '';
  const start = out.indexOf('{');
  if (r.status !== 0 || start < 0) throw new Error(`fio ${full.join(' ')} exited ${r.status}\n${out}${r.stderr ?? ''}`);
  const job = JSON.parse(out.slice(start)).jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}: ${out}`);
  return { bytesPerSec: job.read.bw_bytes + job.write.bw_bytes, iops: job.read.iops + job.write.iops };
}

/**
 * A fio-over-NBD benchmark row. Each round starts ours and qemu-nbd in turn (who goes first
 * alternates), each on `prepare()`'s image (a fresh copy for writes), runs the same fio job, stops
 * the server. A read row warms the page cache once before the first round (lib.mjs warm()); a
 * `fresh` row copies the image before every run and warms the copy. `job` may be a function of sizes.
 */
export function nbdBenchmark({ name, description, goal, unit, image, job, server = {}, fresh = false }) {
  const rate = (r) => (unit === 'req/s' ? r.iops : r.bytesPerSec / MiB);
  return {
    name,
    description,
    goal,
    async run({ sizes, rounds }) {
      const base = image(sizes.imageBytes);
      const args = fioArgs({ ...(typeof job === 'function' ? job(sizes) : job), ...fioTimes(sizes) });
      const copy = join(CACHE, `scratch-${process.pid}-nbd-copy.qcow2`);
      if (!fresh) warm(base);
      const results = { ours: [], peer: [], ceiling: [] };
      const commands = new Map();
      const size = sizes.imageBytes; // the virtual size of every row's image
      for (let i = 0; i < rounds; i++) {
        const ceiling = await startServer('ceiling', { image: base, size, ...server });
        try {
          results.ceiling.push(rate(runFio(args, ceiling.sock)));
          commands.set('ceiling', ceiling.command.replaceAll(ceiling.sock, 'SOCK'));
        } finally {
          await ceiling.stop();
        }
        for (const who of i % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours']) {
          let path = base;
          if (fresh) {
            rmSync(copy, { force: true });
            const cp = spawnSync('cp', ['--sparse=never', base, copy]);
            if (cp.status !== 0) throw new Error(`cp ${base} ${copy}: ${cp.stderr}`);
            warm(copy);
            path = copy;
          }
          const srv = await startServer(who, { image: path, ...server });
          try {
            results[who].push(rate(runFio(args, srv.sock)));
            commands.set(who, srv.command.replaceAll(srv.sock, 'SOCK').replace(path, fresh ? 'COPY_OF_' + base : path));
          } finally {
            await srv.stop();
          }
        }
      }
      if (fresh) rmSync(copy, { force: true });
      const ours = median(results.ours);
      const peer = median(results.peer);
      const ceiling = median(results.ceiling);
      return {
        unit,
        ours,
        peer,
        ratio: ours / peer,
        peerName: `qemu-nbd (${commands.get('peer')})`,
        commands: [commands.get('ours'), commands.get('peer'), `fio ${args.join(' ')} --uri=nbd+unix:///?socket=SOCK`],
        // table.mjs prints these as "seconds per run"; here they are the per-round throughputs.
        oursAll: results.ours,
        peerAll: results.peer,
        notes: [
          `ceiling (${commands.get('ceiling')}, no I/O at all): ${ceiling.toFixed(1)} ${unit} = ${(ceiling / peer).toFixed(2)}x qemu-nbd; ours is ${((100 * ours) / ceiling).toFixed(0)}% of it`,
        ],
      };
    },
  };
}

/** Opens one NBD connection to SOCK and completes the handshake (NBD_OPT_EXPORT_NAME ""); resolves the socket. */
export function openIdleConnection(sock) {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    let buf = Buffer.alloc(0);
    let stage = 'greeting';
    const timer = setTimeout(() => fail(new Error(`handshake timed out (${stage})`)), 15000);
    const fail = (err) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    s.on('error', fail);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 'greeting' && buf.length >= 18) {
        if (buf.subarray(0, 16).toString('latin1') !== 'NBDMAGICIHAVEOPT') return fail(new Error('bad NBD greeting'));
        buf = buf.subarray(18);
        stage = 'export';
        const flags = Buffer.alloc(4);
        flags.writeUInt32BE(3); // FIXED_NEWSTYLE | NO_ZEROES
        const opt = Buffer.alloc(16);
        opt.write('IHAVEOPT', 0, 'latin1');
        opt.writeUInt32BE(1, 8); // NBD_OPT_EXPORT_NAME
        opt.writeUInt32BE(0, 12); // export name "" (the default export of both servers)
        s.write(Buffer.concat([flags, opt]));
      }
      if (stage === 'export' && buf.length >= 10) {
        stage = 'idle';
        clearTimeout(timer);
        s.removeListener('error', fail);
        s.on('error', () => {});
        resolve(s);
      }
    });
    s.on('close', () => {
      if (stage !== 'idle') fail(new Error(`connection closed during the handshake (${stage})`));
    });
  });
}

/** VmRSS of PID in KiB (from /proc/PID/status). */
export function vmRssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export { sleep };
