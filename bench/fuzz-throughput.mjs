// Fuzz throughput: cases per second of each target (open, read, map, check, repair, write,
// snapshot, and open+read together) on the small corpus images, with a fixed seed, as the median of
// a few repetitions. Each repetition is a real campaign (the driver, src/verification/fuzz/driver.ts:
// mutation, the targets, the oracles, shrinking of what it finds), in this process.
//
//   node bench/fuzz-throughput.mjs [--runs N] [--reps R] [--seed S] [--max-seed-bytes B] [--target T[,T]]
//
// Columns: cases/s, over the campaign's wall time; cases/cpu-s, over the processor time of this
// process (all its threads) and of the processes it waited for (none unless a case spawns one):
// cases per second on one core; in-target cpu-s, the driver's own per-target figure (the `qcow2 fuzz`
// table's cases/cpu-s: processor time inside the target and its oracles only), and what the rest of
// the loop (picking, mutating, copying the image) costs on top, as a share of the processor time.
// Needs `npm run build`; the corpus is the one `qcow2 fuzz` uses (built with QEMU unless cached).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, REPO } from './lib.mjs';

const dist = (p) => import(join(REPO, 'dist', 'verification', 'fuzz', p));
const { runFuzz } = await dist('driver.js');
const { corpusSeeds } = await dist('seeds.js');
const { loadRegressions } = await dist('store.js');
const { TARGETS, targetNamed } = await dist('targets.js');
const { CORPUS_CACHE } = await dist('command.js');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '300' },
    reps: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'max-seed-bytes': { type: 'string', default: String(128 * 1024) },
    target: { type: 'string', multiple: true },
  },
});
const runs = Number(values.runs);
const reps = Number(values.reps);
const seed = Number(values.seed);
const maxSeedBytes = Number(values['max-seed-bytes']);
const groups = (values.target ?? [...TARGETS.map((t) => t.name), 'open,read']).map((g) =>
  g.split(',').map((name) => targetNamed(name) ?? usage(`no target '${name}'`)),
);

function usage(message) {
  process.stderr.write(`fuzz-throughput: ${message}\n`);
  process.exit(2);
}

/** Processor time of the processes this one waited for (Linux: cutime + cstime of /proc/self/stat), in ms. */
function childrenCpuMs() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 of proc(5), counted from 1 with pid and comm before the state (index 0 here).
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return 0;
  }
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000 + childrenCpuMs();
};

const all = await corpusSeeds(CORPUS_CACHE, () => {});
const seeds = all.filter((s) => s.bytes.byteLength <= maxSeedBytes);
if (seeds.length === 0) usage(`no corpus image of at most ${maxSeedBytes} bytes`);
const known = loadRegressions(join(REPO, 'test', 'fuzz', 'cases'));
const workDir = await mkdtemp(join(tmpdir(), 'qcow2-fuzz-throughput-'));
const placeholder = join(workDir, 'placeholder.qcow2');
await writeFile(placeholder, new Uint8Array(0));

process.stdout.write(
  `Fuzz throughput: ${runs} cases x ${reps} repetitions per row, seed ${seed}, ${seeds.length} seed images of at most ${maxSeedBytes} bytes (${seeds.map((s) => s.name).join(', ')}); medians\n`,
);
const cell = (s, n, left = false) => (left ? s.padEnd(n) : s.padStart(n));
process.stdout.write(`${cell('target', 10, true)} ${cell('cases/s', 8)} ${cell('cases/cpu-s', 12)} ${cell('in-target/cpu-s', 16)} ${cell('loop share', 11)} ${cell('refused', 8)} ${cell('findings', 9)}\n`);
try {
  for (const targets of groups) {
    const rows = [];
    for (let r = 0; r < reps; r++) {
      const cpu0 = cpuMs();
      const t0 = performance.now();
      const report = await runFuzz({ seed, runs, targets, seeds, qemu: 0, known, workDir, placeholder, log: () => {} });
      const wall = performance.now() - t0;
      const cpu = cpuMs() - cpu0;
      const inTarget = report.stats.reduce((n, s) => n + s.cpuMs, 0);
      rows.push({
        perS: report.cases / (wall / 1000),
        perCpuS: report.cases / (cpu / 1000),
        inTargetPerCpuS: report.cases / (inTarget / 1000),
        loopShare: 1 - inTarget / cpu,
        refused: report.stats.reduce((n, s) => n + s.refused, 0),
        findings: report.findings.length,
      });
    }
    const m = (k) => median(rows.map((x) => x[k]));
    process.stdout.write(
      `${cell(targets.map((t) => t.name).join('+'), 10, true)} ${cell(m('perS').toFixed(0), 8)} ${cell(m('perCpuS').toFixed(0), 12)} ${cell(m('inTargetPerCpuS').toFixed(0), 16)} ${cell(`${(100 * m('loopShare')).toFixed(0)}%`, 11)} ${cell(String(m('refused')), 8)} ${cell(String(m('findings')), 9)}\n`,
    );
  }
} finally {
  await rm(workDir, { recursive: true, force: true });
}
