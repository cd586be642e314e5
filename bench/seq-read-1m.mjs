// Sequential 1 MiB reads of a fully allocated qcow2 image (ours, one at a time as the peer) against Node's own
// fs.readSync reading the equivalent raw file sequentially, both over the whole image twice.
import { join } from 'node:path';
import { allocatedImage, allocatedRaw, alternate, benchSeconds, ours, REPO, warm } from './lib.mjs';
import { isMain, main } from './table.mjs';

const MiB = 1 << 20;
const DEPTH = 1;

export default {
  name: 'seq-read-1m',
  description: `sequential 1 MiB reads (ours depth ${DEPTH}) vs fs.readSync of the equivalent raw file`,
  goal: 0.8, // issue "The optimized engine": sequential 1 MiB reads at least 0.8x Node reading the raw file
  run({ sizes, rounds }) {
    const image = allocatedImage(sizes.imageBytes);
    const raw = allocatedRaw(sizes.imageBytes);
    const n = (2 * sizes.imageBytes) / MiB;
    const oursArgs = ['bench', '-f', 'qcow2', '-c', String(n), '-d', String(DEPTH), '-s', '1M', image];
    const peerArgs = [join(REPO, 'bench', 'node-raw-read.mjs'), raw, String(MiB), String(n)];
    const r = alternate(
      rounds,
      () => {
        warm(image);
        warm(raw);
      },
      () => benchSeconds(...ours(oursArgs)),
      () => benchSeconds(process.execPath, peerArgs),
    );
    return {
      unit: 'MiB/s',
      ours: n / r.ours,
      peer: n / r.peer,
      ratio: r.peer / r.ours,
      peerName: 'Node fs.readSync, 1 MiB sequential, raw file',
      commands: [`./bin/qcow2 ${oursArgs.join(' ')}`, `node ${peerArgs.join(' ')}`],
      oursAll: r.oursAll,
      peerAll: r.peerAll,
    };
  },
};

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
