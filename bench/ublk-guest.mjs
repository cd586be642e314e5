// Inside the VM (started by bench/ublk-lib.mjs): `node bench/ublk-guest.mjs CONFIG_JSON`. Makes the
// images on a tmpfs, then for each round, each workload, each contestant (order rotating by round):
// attach the device, run fio, read the server's and the guest's CPU time around the measured part,
// detach. Progress lines start with "ublk-bench:"; the last line is "UBLK-BENCH-RESULT {json}".
//
//   ours: node ENTRY ublk add IMAGE            (prints /dev/ublkbN; `ublk del N` stops it)
//   nbd:  qemu-nbd -c /dev/nbd0 --cache=writeback -f qcow2 --pid-file=F IMAGE
//         (qemu-nbd serves the image on a unix socket and connects the kernel nbd client to it:
//         one connection, ioctl set-up; `qemu-nbd -d /dev/nbd0` disconnects and the server exits.
//         nbd-client is not installed on the host whose userland the guest runs.)
//   loop: losetup --direct-io=on -f --show RAW (dio checked in /sys/block/loopN/loop/dio)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fioArgs, imageBytesOf, rampOf, roundOrder, WORKLOADS } from './ublk-lib.mjs';

const config = JSON.parse(process.argv[2]);
const DIR = '/bench';
const MiB = 1 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (line) => process.stdout.write(`ublk-bench: ${line}\n`);
const CLK_TCK = 100;

function sh(cmd, args, { allowFail = false, env = null } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, ...(env ? { env: { ...process.env, ...env } } : {}) });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}${r.stderr}`);
  return r;
}

/** CPU seconds (utime+stime) of PID's threads: { total, main (tid = pid), queue (ublk queue threads), other }, or null. */
function procCpu(pid) {
  if (pid === null) return null;
  const sum = { total: 0, main: 0, queue: 0, other: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let stat;
      let comm;
      try {
        stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const secs = (Number(f[11]) + Number(f[12])) / CLK_TCK;
      sum.total += secs;
      if (tid === String(pid)) sum.main += secs;
      else if (/^ublk\d+-q/.test(comm)) sum.queue += secs;
      else sum.other += secs;
    }
  } catch {
    return null;
  }
  return sum;
}

/** [busy, total] jiffies of the whole guest (/proc/stat "cpu" line). */
function guestCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return [total - f[3] - f[4], total];
}

const perfWorks = config.profile ? sh('perf', ['stat', '-e', 'cpu-clock', 'true'], { allowFail: true }).status === 0 : false;
const perfDone = new Set();

// ---- contestants -------------------------------------------------------------------------------

const ourBase = config.profile ? ['node', '--cpu-prof', `--cpu-prof-dir=${join(config.profile, 'cpuprof')}`, config.entry] : ['node', config.entry];

const attach = {
  ours(image) {
    const args = [...ourBase.slice(1), 'ublk', 'add', image];
    const out = sh(ourBase[0], args, config.nodeOptions ? { env: { NODE_OPTIONS: config.nodeOptions } } : {}).stdout.trim().split('\n');
    const dev = out[out.length - 1];
    const id = Number(/^\/dev\/ublkb(\d+)$/.exec(dev)?.[1]);
    if (!Number.isInteger(id)) throw new Error(`ublk add printed ${out.join('\n')}`);
    const pid = Number(readFileSync(`/run/qcow2-ublk/${id}.pid`, 'utf8'));
    return {
      dev,
      pid,
      command: `${config.nodeOptions ? `NODE_OPTIONS='${config.nodeOptions}' ` : ''}${[ourBase[0], ...args].join(' ')}`,
      detach: () => sh('node', [config.entry, 'ublk', 'del', String(id)]),
    };
  },
  async nbd(image) {
    const pidFile = join(DIR, 'qemu-nbd.pid');
    rmSync(pidFile, { force: true });
    const args = ['-c', '/dev/nbd0', '--cache=writeback', '-f', 'qcow2', `--pid-file=${pidFile}`, image];
    sh('qemu-nbd', args);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    return {
      dev: '/dev/nbd0',
      pid,
      command: `qemu-nbd ${args.join(' ')}`,
      async detach() {
        sh('qemu-nbd', ['-d', '/dev/nbd0']);
        for (let i = 0; i < 600 && existsSync(`/proc/${pid}`); i++) await sleep(50);
        if (existsSync(`/proc/${pid}`)) throw new Error(`qemu-nbd ${pid} still running 30 s after -d`);
      },
    };
  },
  loop(image) {
    const args = ['--direct-io=on', '-f', '--show', image];
    const dev = sh('losetup', args).stdout.trim();
    const dio = readFileSync(`/sys/block/${basename(dev)}/loop/dio`, 'utf8').trim();
    if (dio !== '1') throw new Error(`${dev}: direct I/O is off (dio=${dio})`);
    return { dev, pid: null, command: `losetup ${args.join(' ')}`, detach: () => sh('losetup', ['-d', dev]) };
  },
};

// ---- fio ---------------------------------------------------------------------------------------

/** Runs fio on dev; samples the server's and the guest's CPU at the end of the ramp and at the end. */
async function runFio(args, dev, pid, perfOut, ramp) {
  const full = [...args, `--filename=${dev}`];
  const child = spawn('fio', full, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('close', (code) => r(code)));
  let perf = null;
  let start = null;
  const timer = setTimeout(() => {
    start = { server: procCpu(pid), guest: guestCpu(), t: process.hrtime.bigint() };
    if (perfOut) perf = spawn('perf', ['record', '-a', '-g', '-q', '-o', perfOut, '--', 'sleep', String(Math.max(1, config.runtime - 1))], { stdio: 'ignore' });
  }, ramp * 1000 + 300);
  let end = null;
  const endTimer = setTimeout(() => (end = { server: procCpu(pid), guest: guestCpu(), t: process.hrtime.bigint() }), (ramp + config.runtime) * 1000 + 100);
  const code = await exited;
  clearTimeout(timer);
  clearTimeout(endTimer);
  end ??= { server: procCpu(pid), guest: guestCpu(), t: process.hrtime.bigint() };
  if (perf) await new Promise((r) => (perf.exitCode !== null ? r() : perf.on('close', r)));
  const at = out.indexOf('{');
  if (code !== 0 || at < 0) throw new Error(`fio ${full.join(' ')} exited ${code}\n${out}${err}`);
  const job = JSON.parse(out.slice(at)).jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}: ${out}`);
  const iops = job.read.iops + job.write.iops;
  const side = job.read.io_bytes > 0 ? job.read : job.write;
  const pct = side.clat_ns.percentile ?? {};
  const secs = start ? Number(end.t - start.t) / 1e9 : NaN;
  const ios = iops * secs;
  const perIo = (k) => (start && start.server && end.server ? ((end.server[k] - start.server[k]) * 1e6) / ios : null);
  const busy = start ? (end.guest[0] - start.guest[0]) / Math.max(1, end.guest[1] - start.guest[1]) : NaN;
  return {
    iops,
    bytesPerSec: job.read.bw_bytes + job.write.bw_bytes,
    clatP50Us: (pct['50.000000'] ?? NaN) / 1000,
    clatP99Us: (pct['99.000000'] ?? NaN) / 1000,
    // Server CPU per request in microseconds, from the server's threads' utime+stime over the
    // measured part (ours: main = the JS thread, queue = the addon's ublk queue threads, other =
    // V8's and libuv's helper threads and io_uring workers; qemu-nbd: main and other).
    serverCpuUsPerIo: perIo('total'),
    serverCpuSplitUs: start && start.server ? { main: perIo('main'), queue: perIo('queue'), other: perIo('other') } : null,
    guestBusy: busy,
    fioCpu: { usr: job.usr_cpu, sys: job.sys_cpu },
  };
}

// ---- main --------------------------------------------------------------------------------------

async function main() {
  const workloads = WORKLOADS.filter((w) => config.workloads.includes(w.id));
  mkdirSync(DIR, { recursive: true });
  sh('mount', ['-t', 'tmpfs', '-o', `size=${Math.floor(config.memMiB * 0.8)}M`, 'bench', DIR]);
  for (const m of ['ublk_drv', 'nbd', 'loop']) sh('modprobe', [m]);
  log(`kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${sh('nproc', []).stdout.trim()} vCPUs, images on tmpfs ${DIR}; perf ${perfWorks ? 'works' : config.profile ? 'does not work' : 'not asked for'}`);
  const size = String(config.imageBytes);
  const prealloc = join(DIR, 'prealloc.qcow2');
  const raw = join(DIR, 'prealloc.raw');
  const t0 = Date.now();
  const needPrealloc = workloads.some((w) => w.image === 'prealloc');
  const prep = [];
  if (needPrealloc) {
    prep.push(`qemu-img create -f qcow2 -o preallocation=full ${prealloc} ${size}`, `qemu-img create -f raw -o preallocation=full ${raw} ${size}`);
    sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'preallocation=full', prealloc, size]);
    sh('qemu-img', ['create', '-q', '-f', 'raw', '-o', 'preallocation=full', raw, size]);
  }
  log(`images made in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${prep.join('; ') || '(none)'}`);

  const runs = [];
  const commands = {};
  for (let round = 0; round < config.rounds; round++) {
    const order = roundOrder(round);
    for (const w of workloads) {
      const args = fioArgs(w, config);
      for (const who of order) {
        let image = who === 'loop' ? raw : prealloc;
        let fresh = null;
        if (w.image === 'empty') {
          fresh = join(DIR, who === 'loop' ? 'empty.raw' : 'empty.qcow2');
          rmSync(fresh, { force: true });
          if (who === 'loop') sh('truncate', ['-s', String(imageBytesOf(w, config)), fresh]);
          else sh('qemu-img', ['create', '-q', '-f', 'qcow2', fresh, String(imageBytesOf(w, config))]);
          image = fresh;
        }
        const t = Date.now();
        const dev = await attach[who](image);
        const attachMs = Date.now() - t;
        let r;
        try {
          const perfKey = `${w.id}-${who}`;
          const perfOut = perfWorks && !perfDone.has(perfKey) ? join(config.profile, `perf-${perfKey}.data`) : null;
          if (perfOut) perfDone.add(perfKey);
          r = await runFio(args, dev.dev, dev.pid, perfOut, rampOf(w, config));
        } finally {
          await dev.detach();
        }
        if (fresh) rmSync(fresh, { force: true });
        const creation = w.image === 'empty' ? (who === 'loop' ? `truncate -s ${imageBytesOf(w, config)} EMPTY.raw; ` : `qemu-img create -f qcow2 EMPTY.qcow2 ${imageBytesOf(w, config)}; `) : '';
        commands[w.id] ??= { fio: `fio ${args.join(' ')} --filename=DEV` };
        commands[w.id][who] = creation + dev.command.replace(image, fresh ? (who === 'loop' ? 'EMPTY.raw' : 'EMPTY.qcow2') : image);
        runs.push({ round, workload: w.id, who, attachMs, ...r });
        const v = w.unit === 'req/s' ? `${r.iops.toFixed(0)} req/s` : `${(r.bytesPerSec / MiB).toFixed(1)} MiB/s`;
        const sp = r.serverCpuSplitUs;
        const cpu = r.serverCpuUsPerIo === null ? '' : `, server ${r.serverCpuUsPerIo.toFixed(0)} us/req (main ${sp.main.toFixed(0)}, queue ${sp.queue.toFixed(0)}, other ${sp.other.toFixed(0)})`;
        log(`round ${round + 1} ${w.id} ${who}: ${v} (p50 ${r.clatP50Us.toFixed(0)} us, p99 ${r.clatP99Us.toFixed(0)} us${cpu}, guest busy ${(r.guestBusy * 100).toFixed(0)}%, attach ${attachMs} ms)`);
      }
    }
  }
  process.stdout.write(`UBLK-BENCH-RESULT ${JSON.stringify({ runs, commands, prep })}\n`);
}

try {
  await main();
} catch (err) {
  process.stdout.write(`ublk-bench: FAILED: ${err.stack ?? err}\n`);
  process.exitCode = 1;
}
