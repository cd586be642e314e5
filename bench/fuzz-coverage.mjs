// What the fuzz corpus reaches: a `qcow2 fuzz` campaign run with V8's own coverage on
// (NODE_V8_COVERAGE, inherited by every node process the campaign starts), then c8 maps dist/ back
// to src/ through the build's source maps and this prints statements % and branches % per folder of
// src/ (files never loaded count, at 0 %). Needs `npm run build` and the c8 devDependency.
//
//   node bench/fuzz-coverage.mjs [--runs N] [--seed S] [--target T[,T]] [--seeds REGEXP] [--corpus DIR] [--json FILE]
//
// The campaign is the real command (its output goes to stderr); its new findings are saved in a
// temporary copy of test/fuzz/cases, not in the repository. c8 counts statements per line (V8 gives
// byte ranges of blocks, not statements) and a branch per block V8 reports (each arm of an if,
// ?:, ||, && and each case).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { QCOW2, REPO } from './lib.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    target: { type: 'string', multiple: true },
    seeds: { type: 'string' },
    corpus: { type: 'string' },
    json: { type: 'string' },
  },
});

const require = createRequire(import.meta.url);
let c8;
try {
  c8 = join(require.resolve('c8/package.json'), '..', 'bin', 'c8.js');
} catch {
  process.stderr.write('fuzz-coverage: c8 is not installed (npm ci installs it, a devDependency)\n');
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'qcow2-fuzz-coverage-'));
try {
  const v8dir = join(work, 'v8');
  const store = join(work, 'cases');
  const repoStore = join(REPO, 'test', 'fuzz', 'cases');
  if (existsSync(repoStore)) cpSync(repoStore, store, { recursive: true });
  const args = ['fuzz', '--runs', values.runs, '--seed', values.seed, '--out', store];
  for (const t of values.target ?? []) args.push('--target', t);
  if (values.seeds !== undefined) args.push('--seeds', values.seeds);
  if (values.corpus !== undefined) args.push('--corpus', values.corpus);
  process.stderr.write(`fuzz-coverage: qcow2 ${args.join(' ')}\n`);
  const t0 = performance.now();
  const fuzz = spawnSync(process.execPath, [QCOW2, ...args], {
    cwd: REPO,
    env: { ...process.env, NODE_V8_COVERAGE: v8dir },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const wallS = (performance.now() - t0) / 1000;
  // 0: no new finding, 1: new findings (saved in the temporary store): both are a finished campaign.
  if (fuzz.status !== 0 && fuzz.status !== 1) {
    process.stderr.write(`fuzz-coverage: the campaign failed (${fuzz.signal ?? `exit status ${fuzz.status}`})\n`);
    process.exit(2);
  }
  const reportDir = join(work, 'report');
  const report = spawnSync(
    process.execPath,
    [c8, 'report', '--temp-directory', v8dir, '--report-dir', reportDir, '--reporter', 'json-summary',
      '--all', '--src', join(REPO, 'dist'), '--include', 'dist/**', '--include', 'src/**', '--exclude-after-remap', '--exclude', '**/*.d.ts'],
    { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (report.status !== 0) {
    process.stderr.write(`fuzz-coverage: c8 report failed (exit status ${report.status})\n`);
    process.exit(2);
  }
  const summary = JSON.parse(readFileSync(join(reportDir, 'coverage-summary.json'), 'utf8'));
  const folders = perFolder(summary);
  printTable(folders, `${values.runs} cases, seed ${values.seed}${values.target ? `, targets ${values.target.join(',')}` : ''}, ${wallS.toFixed(0)} s`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ runs: Number(values.runs), seed: Number(values.seed), folders }, null, 2)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** c8's per-file summary summed per folder of src/ (`src/check/x.ts` and `src/check/y/z.ts`: `check`). */
function perFolder(summary) {
  const folders = new Map();
  const add = (name, s) => {
    let f = folders.get(name);
    if (!f) folders.set(name, (f = { folder: name, files: 0, statements: [0, 0], branches: [0, 0], functions: [0, 0] }));
    f.files++;
    f.functions[0] += s.functions.covered;
    f.functions[1] += s.functions.total;
    f.statements[0] += s.statements.covered;
    f.statements[1] += s.statements.total;
    f.branches[0] += s.branches.covered;
    f.branches[1] += s.branches.total;
  };
  for (const [file, s] of Object.entries(summary)) {
    if (file === 'total') continue;
    const rel = relative(REPO, file).split(sep);
    // The generated Kaitai parsers are copied into dist/ as they are (no source map): under spec.
    const inSrc = rel[0] === 'src' ? rel.slice(1) : rel[0] === 'dist' ? rel.slice(1) : undefined;
    if (inSrc === undefined) continue;
    add(inSrc.length === 1 ? '(src/*.ts)' : inSrc[0], s);
    add('all of src/', s);
  }
  return [...folders.values()].sort((a, b) => (a.folder === 'all of src/') - (b.folder === 'all of src/') || a.folder.localeCompare(b.folder));
}

function printTable(folders, title) {
  const pct = ([c, t]) => (t === 0 ? '-' : `${((100 * c) / t).toFixed(1)}%`);
  const row = (cells) => `${cells[0].padEnd(16)} ${cells.slice(1).map((c) => c.padStart(17)).join(' ')}`;
  process.stdout.write(`\nCoverage of src/ reached by the fuzz corpus (${title})\n`);
  process.stdout.write(`${row(['folder', 'files', 'statements', 'branches', 'functions'])}\n`);
  for (const f of folders) {
    process.stdout.write(`${row([f.folder, String(f.files), ...['statements', 'branches', 'functions'].map((k) => `${pct(f[k])} of ${f[k][1]}`)])}\n`);
  }
  process.stdout.write(
    'Statements are the lines of the TypeScript source (c8); V8 reports the branches of a function only once it has run, so a\n' +
      "folder's branch % is over the functions reached (see functions %), and a file never loaded counts as one branch.\n",
  );
}
