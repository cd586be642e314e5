// `qcow2 bench` against `qemu-img bench` on the same image, same options, alternating rounds.
import { benchSeconds, alternate, ours, warm } from './lib.mjs';

/** 1 MiB + 4 KiB: coprime with the number of 4 KiB blocks, so the offsets visit every block in a scattered order. */
export const SCATTER_STEP = (1 << 20) + 4096;

/**
 * A request benchmark: `image(bytes)` makes the fixture, `options` are the bench options common
 * to both tools (besides -c and -f), `count(sizes)` the number of requests.
 */
export function requestBenchmark({ name, description, goal, image, options, count }) {
  return {
    name,
    description,
    goal,
    run({ sizes, rounds }) {
      const path = image(sizes.imageBytes);
      const n = count(sizes);
      const common = ['-f', 'qcow2', '-c', String(n), ...options];
      const oursArgs = ['bench', ...common, path];
      const qemuArgs = ['bench', '-t', 'writeback', ...common, path];
      const r = alternate(
        rounds,
        () => warm(path),
        () => benchSeconds(...ours(oursArgs)),
        () => benchSeconds('qemu-img', qemuArgs),
      );
      return {
        unit: 'req/s',
        ours: n / r.ours,
        peer: n / r.peer,
        ratio: r.peer / r.ours,
        peerName: 'qemu-img bench (thread-pool aio, -t writeback)',
        commands: [`./bin/qcow2 ${oursArgs.join(' ')}`, `qemu-img ${qemuArgs.join(' ')}`],
        oursAll: r.oursAll,
        peerAll: r.peerAll,
      };
    },
  };
}
