/**
 * Crash states of `qcow2 amend` (src/amend/amend.ts): each amend runs once over a RecordingFile,
 * then every state the image file could be in after a power loss during it (src/verification/
 * crash/states.ts: the writes since the last completed flush landed in any subset, some torn) is
 * judged by QEMU: `qemu-img check` finds no corruption (leaked clusters are allowed), and the guest
 * contents, active layer and every snapshot, read as they did before the amend.
 */
import { execa } from 'execa';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amendImage } from '../../src/amend/amend.js';
import { parseAmendOptions } from '../../src/amend/options.js';
import { openQcow2 } from '../../src/device/open.js';
import { type FileOp, RecordingFile } from '../../src/io/recording-file.js';
import { Qcow2Front } from '../../src/qcow2/front.js';
import type { Qcow2State } from '../../src/qcow2/state.js';
import { crashStates, durableAt, epochsOf, materialize } from '../../src/verification/crash/states.js';
import { scratchDir } from '../../src/verification/crash/workload.js';
import { requireTool } from '../support/tools.js';

let dir = '';
const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });

interface Case {
  name: string;
  create: string;
  options: string;
  /** qemu-io commands, then `snapshot` to take one. */
  before: string[];
}

const CASES: Case[] = [
  { name: 'refcount_bits=2', create: 'cluster_size=4k', options: 'refcount_bits=2', before: ['write -P 0x11 0 64k', 'snapshot', 'write -z 0 8k', 'write -P 0x12 100k 4k'] },
  { name: 'refcount_bits=64', create: 'cluster_size=4k,refcount_bits=8', options: 'refcount_bits=64', before: ['write -P 0x11 0 64k', 'snapshot', 'write -P 0x13 8k 8k'] },
  { name: 'compat=0.10', create: 'cluster_size=4k', options: 'compat=0.10', before: ['write -P 0x11 0 64k', 'write -z 8k 8k', 'snapshot', 'write -z 0 4k', 'write -z 200k 8k'] },
  { name: 'compat=1.1', create: 'cluster_size=4k,compat=0.10', options: 'compat=1.1,lazy_refcounts=on', before: ['write -P 0x11 0 64k', 'snapshot', 'write -P 0x14 4k 4k'] },
  { name: 'lazy_refcounts=off', create: 'cluster_size=4k,lazy_refcounts=on', options: 'lazy_refcounts=off,refcount_bits=4', before: ['write -P 0x11 0 64k'] },
];

async function prepare(k: Case): Promise<string> {
  const file = `${k.name}.qcow2`;
  await img('create', '-q', '-f', 'qcow2', '-o', k.create, file, '1M');
  let snapshots = 0;
  for (const cmd of k.before) {
    if (cmd === 'snapshot') await img('snapshot', '-c', `s${++snapshots}`, file);
    else await execa('qemu-io', ['-f', 'qcow2', '-c', cmd, file], { cwd: dir });
  }
  return file;
}

/** The guest's bytes: the active layer and each snapshot, as qemu-img reads them. */
async function contents(file: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const info = JSON.parse((await img('info', '--output=json', file)).stdout) as { snapshots?: { name: string }[] };
  for (const sn of [undefined, ...(info.snapshots ?? []).map((s) => s.name)]) {
    const raw = `${file}.${sn ?? 'active'}.raw`;
    await img('convert', ...(sn === undefined ? [] : ['-l', `snapshot.name=${sn}`]), '-O', 'raw', file, raw);
    out.push(await readFile(join(dir, raw)));
    await rm(join(dir, raw));
  }
  return out;
}

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await scratchDir('qcow2-amend-crash-');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('crash states of qcow2 amend', () => {
  for (const k of CASES) {
    it(k.name, async () => {
      const file = await prepare(k);
      const path = join(dir, file);
      const initial = new Uint8Array(await readFile(path));
      const expected = await contents(file);
      const log: FileOp[] = [];
      const device = await openQcow2(path, { wrapFile: (f, role) => new RecordingFile(f, log, role) });
      try {
        await amendImage(device as Qcow2Front<Qcow2State>, parseAmendOptions([k.options]));
      } finally {
        await device.close();
      }
      expect(device).toBeInstanceOf(Qcow2Front);
      const epochs = epochsOf(log);
      const durable = new Map<number, Uint8Array>();
      let states = 0;
      let leaky = 0;
      for (const s of crashStates(log, { exhaustiveUpTo: 6, samples: 8, torn: 2, seed: 7 })) {
        let base = durable.get(s.epoch);
        if (!base) durable.set(s.epoch, (base = durableAt(initial, log, epochs[s.epoch]!)));
        const crashed = `crash-${k.name}.qcow2`;
        await writeFile(join(dir, crashed), materialize(base, log, s));
        const check = await execa('qemu-img', ['check', crashed], { cwd: dir, reject: false });
        const where = `state ${states} (epoch ${s.epoch}, landed ${s.landed.join(',')}${s.torn ? `, torn ${s.torn.index}` : ''})`;
        expect([0, 3], `${where}: ${check.stdout}${check.stderr}`).toContain(check.exitCode);
        if (check.exitCode === 3) leaky++;
        const got = await contents(crashed);
        expect(got.length, where).toBe(expected.length);
        got.forEach((g, i) => expect(g.equals(expected[i]!), `${where}: layer ${i}`).toBe(true));
        states++;
      }
      console.log(`amend crash ${k.name}: ${log.length} operations, ${states} states, ${leaky} with leaks`);
      expect(states).toBeGreaterThan(3);
    }, 300_000);
  }
});
