/**
 * The parts of `qcow2 verify` about `qcow2 check` and crash safety:
 *  - our check's JSON and exit status equal `qemu-img check`'s on every corpus image;
 *  - a seeded sample of crash states of every crash workload on each engine is judged
 *    (src/verification/crash/: the image opens, qemu-img check and ours find no corruption, flushed data reads back).
 */
import { runTool } from '../../tools/run.js';
import type { CorpusImage } from '../corpus/build.js';
import { explore } from '../crash/explore.js';
import { WORKLOADS } from '../crash/workloads.js';
import { check } from '../../cli/check.js';
import { lanesFor } from '../engines.js';
import type { Row } from './row.js';

export async function checkParity(corpus: CorpusImage[], out: (line?: string) => void): Promise<Row> {
  let failed = 0;
  for (const image of corpus) {
    if (image.features.some((f) => f.startsWith('encryption='))) continue; // qemu-img needs the secret
    const theirs = await runTool(process.env['QEMU_IMG'] ?? 'qemu-img', ['check', '--output=json', ...image.openArgs], image.dir);
    let ours = '';
    const code = await check(['--output=json', image.image], { stdout: (s) => (ours += s), stderr: () => {}, isTTY: false }).catch(() => 1);
    if (ours !== theirs.stdout || code !== theirs.code) {
      failed++;
      out(`  check differs on ${image.name}: ours exit ${code}, qemu-img exit ${theirs.code}`);
    }
  }
  const cases = corpus.filter((i) => !i.features.some((f) => f.startsWith('encryption='))).length;
  return { what: 'corpus: qcow2 check = qemu-img check (JSON and exit status)', cases, failed, note: 'LUKS image left to the tests' };
}

export async function crashSample(total: number, seed: number, out: (line?: string) => void): Promise<Row> {
  const engines = lanesFor('crash-states');
  const per = Math.max(1, Math.ceil(total / (engines.length * WORKLOADS.length)));
  out(`Crash states: a sample of ${per} per workload and engine (${WORKLOADS.length} workloads, ${engines.length} engines, seed ${seed}) ...`);
  let cases = 0;
  let failed = 0;
  for (const { name, open } of engines) {
    for (const w of WORKLOADS) {
      if (total === 0) break;
      const r = await explore(w, open, { maxStates: per, seed, maxFailures: 1 });
      cases += r.distinct;
      if (r.failures.length > 0) {
        failed++;
        out(`  FAILED ${name} ${w.name}: ${r.failures[0]!.state}: ${r.failures[0]!.problems.join('; ').slice(0, 500)}`);
      }
    }
  }
  return { what: 'crash states: open, qemu-img check and ours clean, flushed data', cases, failed, note: 'every subset of each flush epoch, torn writes' };
}
