// Report row (goal n/a): resident memory (VmRSS, /proc/PID/status) of our server and of qemu-nbd
// with 100 idle NBD connections open (handshake done with NBD_OPT_EXPORT_NAME, then nothing sent).
// "ours"/"peer" are MiB with the connections open; the ratio is peer / ours (above 1: we use less).
// The idle baseline (no connection) of each is printed on stderr.
import { allocatedImage, median } from './lib.mjs';
import { openIdleConnection, sleep, startServer, vmRssKiB } from './nbd-lib.mjs';
import { isMain, main } from './table.mjs';

const CONNECTIONS = 100;

async function measure(who, image) {
  const srv = await startServer(who, { image, shared: CONNECTIONS + 1 });
  const sockets = [];
  try {
    await sleep(300);
    const baseline = vmRssKiB(srv.pid);
    for (let i = 0; i < CONNECTIONS; i++) sockets.push(await openIdleConnection(srv.sock));
    await sleep(1000);
    const loaded = vmRssKiB(srv.pid);
    return { baseline: baseline / 1024, loaded: loaded / 1024, command: srv.command.replaceAll(srv.sock, 'SOCK') };
  } finally {
    for (const s of sockets) s.destroy();
    await srv.stop();
  }
}

export default {
  name: 'nbd-idle-memory',
  description: `report (goal n/a): VmRSS with ${CONNECTIONS} idle NBD connections open, allocated image; ratio peer/ours`,
  goal: 0, // no goal in issue 11: reported only
  async run({ sizes, rounds }) {
    const image = allocatedImage(sizes.imageBytes);
    const all = { ours: [], peer: [] };
    const base = { ours: [], peer: [] };
    const commands = {};
    for (let i = 0; i < rounds; i++) {
      for (const who of i % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours']) {
        const m = await measure(who, image);
        all[who].push(m.loaded);
        base[who].push(m.baseline);
        commands[who] = m.command;
      }
    }
    const f = (v) => `${v.toFixed(1)} MiB`;
    process.stderr.write(
      `bench:   VmRSS idle (0 connections) -> ${CONNECTIONS} connections: ours ${f(median(base.ours))} -> ${f(median(all.ours))}; ` +
        `qemu-nbd ${f(median(base.peer))} -> ${f(median(all.peer))}\n`,
    );
    const ours = median(all.ours);
    const peer = median(all.peer);
    return {
      unit: 'MiB',
      ours,
      peer,
      ratio: peer / ours,
      peerName: `qemu-nbd (${commands.peer}); report only, ratio = peer VmRSS / our VmRSS`,
      commands: [commands.ours, commands.peer],
      oursAll: all.ours,
      peerAll: all.peer,
      baseline: { ours: median(base.ours), peer: median(base.peer) },
    };
  },
};

if (isMain(import.meta.url)) process.exitCode = await main([(await import(import.meta.url)).default], process.argv.slice(2));
