// `qcow2 convert` against `qemu-img convert` on the same input, alternating rounds; wall-clock
// seconds of each whole command, the output removed after each run.
import { rmSync } from 'node:fs';
import { alternate, ours, scratch, timeCommand, warm } from './lib.mjs';

export function convertBenchmark({ name, description, goal, input, oursOptions, qemuOptions, peerName }) {
  return {
    name,
    description,
    goal,
    run({ sizes, rounds }) {
      const source = input(sizes.convertBytes);
      const out = scratch(`${name}.out`);
      const oursArgs = ['convert', ...oursOptions, source, out];
      const qemuArgs = ['convert', ...qemuOptions, source, out];
      const timed = (cmd, args) => {
        try {
          return timeCommand(cmd, args);
        } finally {
          rmSync(out, { force: true });
        }
      };
      const r = alternate(
        rounds,
        () => warm(source),
        () => timed(...ours(oursArgs)),
        () => timed('qemu-img', qemuArgs),
      );
      return {
        unit: 's',
        ours: r.ours,
        peer: r.peer,
        ratio: r.peer / r.ours,
        peerName,
        commands: [`./bin/qcow2 ${oursArgs.join(' ')}`, `qemu-img ${qemuArgs.join(' ')}`],
        oursAll: r.oursAll,
        peerAll: r.peerAll,
      };
    },
  };
}
