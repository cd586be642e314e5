/**
 * `qcow2 convert -l, -T, -m, -W, -C, -r, --salvage, --target-image-opts` and `check -T`,
 * `compare -T` against qemu-img 7.2, with the same options on copies of the same images:
 *  - the same exit status, stdout and messages (test/support/convert-parity.ts);
 *  - after success: `qemu-img compare` finds the two outputs identical, `qemu-img check` finds ours
 *    clean, and `qemu-img map` is the same (host offsets included), but after -W, whose layout
 *    depends on timing in both tools (the case says `layout: false`);
 *  - -r: both take the time qemu's throttle takes (4 MiB at 512 KiB/s: the first 2 MiB write passes,
 *    then the bucket drains at the rate: at least 3 s) — a check of the limit, not a benchmark.
 * The sources: an image with two internal snapshots and an active state that differ from both, an
 * image with zero-filled data clusters and zero clusters (-C copies data as it is), an image with a
 * corrupt compressed cluster (--salvage), a raw image (-l refused).
 */
import { execa } from 'execa';
import { open, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { type ConvertCase, messages, outputInfo, outputMap, runBoth, withoutHostZeroes } from '../support/convert-parity.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;

const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });
const io = (format: string, file: string, ...cmds: string[]) => execa('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file], { cwd: dir });

/** Overwrites the first bytes of the compressed cluster that guest cluster `index` of a 64 KiB-cluster image maps. */
async function corruptCompressedCluster(name: string, index: number): Promise<void> {
  const f = await open(join(dir, name), 'r+');
  try {
    const read = async (at: number) => {
      const b = Buffer.alloc(8);
      await f.read(b, 0, 8, at);
      return b.readBigUInt64BE(0);
    };
    const header = Buffer.alloc(48);
    await f.read(header, 0, 48, 0);
    const l1 = Number(header.readBigUInt64BE(40));
    const l2 = Number((await read(l1)) & 0x00fffffffffffe00n);
    const entry = await read(l2 + 8 * index);
    expect(entry >> 62n, 'a compressed cluster').toBe(1n);
    const host = Number(entry & ((1n << 54n) - 1n));
    await f.write(Buffer.alloc(64, 0xff), 0, 64, host);
  } finally {
    await f.close();
  }
}

async function buildFixtures(): Promise<void> {
  // Snapshots: s1 (id 1) all 0x01; s2 (id 2) with 0x02 and a zero cluster; the active state past both.
  await img('create', '-q', '-f', 'qcow2', 'snap.qcow2', '4M');
  await io('qcow2', 'snap.qcow2', 'write -P 1 0 4M');
  await img('snapshot', '-c', 's1', 'snap.qcow2');
  await io('qcow2', 'snap.qcow2', 'write -P 2 0 1M', 'write -z 2M 64k', 'write -P 0 3M 64k');
  await img('snapshot', '-c', 's2', 'snap.qcow2');
  await io('qcow2', 'snap.qcow2', 'write -P 3 3M 64k', 'write -z 1M 64k');
  // Data clusters holding zeros, zero clusters, data: -C copies data without looking for zeros.
  await img('create', '-q', '-f', 'qcow2', 'z.qcow2', '4M');
  await io('qcow2', 'z.qcow2', 'write -P 1 0 64k', 'write -P 0 64k 64k', 'write -P 3 1M 4k', 'write -z 2M 64k', 'write -P 5 3M 1M');
  // Two corrupt compressed clusters among good data.
  await img('create', '-q', '-f', 'qcow2', 'bad.qcow2', '1M');
  await io('qcow2', 'bad.qcow2', 'write -P 1 0 64k', 'write -c -P 2 64k 64k', 'write -P 3 128k 64k', 'write -c -P 4 256k 64k', 'write -c -P 5 320k 64k');
  await corruptCompressedCluster('bad.qcow2', 1);
  await corruptCompressedCluster('bad.qcow2', 5);
  // Existing targets.
  await img('create', '-q', '-f', 'qcow2', 'full.qcow2', '4M');
  await io('qcow2', 'full.qcow2', 'write -P 0x77 0 4M');
  await img('create', '-q', '-f', 'raw', 'src.raw', '1M');
  await io('raw', 'src.raw', 'write -P 9 0 64k');
  await img('create', '-q', '-f', 'raw', 'big.raw', '4M');
  await io('raw', 'big.raw', 'write -P 8 0 4M');
  // -r: 4 MiB of data.
  await img('create', '-q', '-f', 'qcow2', 'rate.qcow2', '4M');
  await io('qcow2', 'rate.qcow2', 'write -P 6 0 4M');
}

interface Case extends ConvertCase {
  /** -W: the layout depends on timing; only contents are compared. */
  layout?: false;
}

const q = (args: string[], extra: Partial<Case> = {}): Case => ({ args: ['-O', 'qcow2', ...args], out: 'qcow2', ...extra });
const r = (args: string[], extra: Partial<Case> = {}): Case => ({ args: ['-O', 'raw', ...args], out: 'raw', ...extra });

const CASES: Case[] = [
  // -l: plain ID or name, snapshot.id= / snapshot.name= / both.
  ...['s1', '1', 's2', '2', 'snapshot.id=2', 'snapshot.name=s1', 'snapshot.id=1,snapshot.name=s1'].flatMap((l) => [q(['-l', l, 'snap.qcow2', 'OUT']), r(['-l', l, 'snap.qcow2', 'OUT'])]),
  q(['-l', 's2', '-c', 'snap.qcow2', 'OUT']),
  q(['-l', 's2', '-n', 'snap.qcow2', 'OUT'], { target: 'full.qcow2' }),
  // -T: every name qemu-img knows.
  ...['none', 'off', 'directsync', 'writeback', 'writethrough', 'unsafe'].map((t) => q(['-T', t, 'snap.qcow2', 'OUT'])),
  // -m, -W
  ...['1', '2', '16', '0x3', '010', ' 4', '+5'].map((m) => q(['-m', m, 'snap.qcow2', 'OUT'])),
  q(['-W', 'snap.qcow2', 'OUT'], { layout: false }),
  q(['-W', '-m', '1', 'z.qcow2', 'OUT'], { layout: false }),
  r(['-W', '-m', '16', 'snap.qcow2', 'OUT'], { layout: false }),
  q(['-W', '-c', 'snap.qcow2', 'OUT'], { layout: false }),
  // -C: data copied as it is.
  q(['-C', 'z.qcow2', 'OUT']),
  r(['-C', 'z.qcow2', 'OUT']),
  q(['-C', '-n', 'z.qcow2', 'OUT'], { target: 'full.qcow2' }),
  // -r 0: no limit.
  q(['-r', '0', 'snap.qcow2', 'OUT']),
  q(['-r', '4E', 'snap.qcow2', 'OUT']),
  r(['-r', '1G', 'z.qcow2', 'OUT']),
  // --salvage: the unreadable sectors are zeros, one warning each (-q: none).
  r(['--salvage', 'bad.qcow2', 'OUT'], { unorderedMessages: true }),
  q(['--salvage', 'bad.qcow2', 'OUT'], { unorderedMessages: true }),
  q(['--salvage', '-q', 'bad.qcow2', 'OUT']),
  q(['--salvage', 'snap.qcow2', 'OUT']),
  // --target-image-opts (with -n)
  { args: ['-n', '--target-image-opts', 'snap.qcow2', 'driver=qcow2,file.filename=OUT'], target: 'full.qcow2', out: 'qcow2' },
  { args: ['-n', '--target-image-opts', 'z.qcow2', 'driver=raw,file.filename=OUT'], target: 'big.raw', out: 'raw' },
];

const REFUSED: Case[] = [
  ...['0', '17', 'x', '3k', '', '08', '0x'].map((m) => r(['-m', m, 'snap.qcow2', 'OUT'])),
  q(['-C', '-c', 'snap.qcow2', 'OUT']),
  r(['-C', '-S', '0', 'snap.qcow2', 'OUT']),
  r(['-C', '--salvage', 'snap.qcow2', 'OUT']),
  r(['--target-image-opts', 'snap.qcow2', 'OUT']),
  { args: ['-n', '--target-image-opts', '-O', 'qcow2', 'snap.qcow2', 'driver=qcow2,file.filename=OUT'], target: 'full.qcow2', out: 'qcow2' },
  r(['-T', 'bogus', 'snap.qcow2', 'OUT']),
  r(['-T', '', 'snap.qcow2', 'OUT']),
  ...['x', '1.5b', '8E'].map((rate) => r(['-r', rate, 'snap.qcow2', 'OUT'])),
  r(['-r-1', 'snap.qcow2', 'OUT']),
  ...['nosuch', 'snapshot.id=1,snapshot.name=s2', 'snapshot.id=3', 'snapshot.name=s1,snapshot.name=s9', 'snapshot.foo=1', 'snapshot.name=s1,foo=1'].map((l) => r(['-l', l, 'snap.qcow2', 'OUT'])),
  r(['-l', 's1', 'src.raw', 'OUT']),
  r(['-l', 's1', '-f', 'raw', 'snap.qcow2', 'OUT']),
];

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io'] as const) await requireTool(t);
  dir = await mkdtemp(join(tmpdir(), 'qcow2-convert-rest-'));
  await buildFixtures();
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('qcow2 convert with -l, -T, -m, -W, -C, -r, --salvage, --target-image-opts does what qemu-img convert does', () => {
  for (const k of CASES) {
    it(`${k.args.join(' ')}${k.target ? ` (into a copy of ${k.target})` : ''}`, async () => {
      const { theirs, ours, qr } = await runBoth(dir, k, n++);
      expect(qr.exitCode, qr.stderr).toBe(0);
      if (k.out === 'qcow2') {
        const check = await execa('qemu-img', ['check', ours], { cwd: dir, reject: false });
        expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      }
      expect(await outputInfo(dir, ours, k.out)).toEqual(await outputInfo(dir, theirs, k.out));
      const cmp = await execa('qemu-img', ['compare', '-f', k.out, '-F', k.out, theirs, ours], { cwd: dir, reject: false });
      expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
      const [mt, mo] = [await outputMap(dir, theirs, k.out), await outputMap(dir, ours, k.out)];
      const layout = k.layout !== false;
      // Out of order, the clusters are the same but where each lies in the file is timing's.
      expect(withoutHostZeroes(mo, layout)).toEqual(withoutHostZeroes(mt, layout));
    });
  }
});

describe.concurrent('qcow2 convert refuses what qemu-img convert refuses', () => {
  for (const k of REFUSED) {
    it(`${k.args.join(' ')}${k.target ? ` (into a copy of ${k.target})` : ''}`, async () => {
      const { qr } = await runBoth(dir, k, n++);
      expect(qr.exitCode).toBe(1);
    });
  }
});

describe('qcow2 convert -r limits the writes as qemu-img does', () => {
  it('-r 512k: 4 MiB take at least 3 s in both, and the outputs are the same', async () => {
    const times: number[] = [];
    for (const [tool, out] of [
      ['qemu-img', 'rate-t.raw'],
      ['qcow2', 'rate-o.raw'],
    ] as const) {
      const started = performance.now();
      const res = tool === 'qemu-img' ? await execa('qemu-img', ['convert', '-r', '512k', '-O', 'raw', 'rate.qcow2', out], { cwd: dir, reject: false }) : await qcow2(['convert', '-r', '512k', '-O', 'raw', 'rate.qcow2', out], { cwd: dir });
      expect(res.exitCode, res.stderr).toBe(0);
      times.push(performance.now() - started);
    }
    for (const t of times) expect(t).toBeGreaterThanOrEqual(3000);
    const cmp = await img('compare', '-f', 'raw', '-F', 'raw', 'rate-t.raw', 'rate-o.raw');
    expect(cmp.exitCode).toBe(0);
  }, 30_000);
});

describe.concurrent('check -T and compare -T take what qemu-img takes', () => {
  const cases: [string, string[]][] = [
    ...['none', 'writeback', 'unsafe', 'bogus', ''].map((t): [string, string[]] => ['check', ['-T', t, 'snap.qcow2']]),
    ...['directsync', 'writethrough', 'off', 'bogus'].map((t): [string, string[]] => ['compare', ['-T', t, 'snap.qcow2', 'snap.qcow2']]),
  ];
  for (const [command, args] of cases) {
    it(`${command} ${args.join(' ')}`, async () => {
      const copy = `${command}-${n++}.qcow2`;
      await copyFile(join(dir, 'snap.qcow2'), join(dir, copy));
      const withCopy = args.map((a) => (a === 'snap.qcow2' ? copy : a));
      const qr = await execa('qemu-img', [command, ...withCopy], { cwd: dir, reject: false });
      const rr = await qcow2([command, ...withCopy], { cwd: dir });
      expect(rr.exitCode, rr.stderr).toBe(qr.exitCode);
      expect(rr.stdout).toBe(qr.stdout);
      const ours = rr.stderr.replace(new RegExp(`^qcow2 ${command}: [a-z]+: `, 'gm'), 'qcow2 convert: usage: ');
      expect(messages(ours, 'qcow2')).toBe(messages(qr.stderr, 'qemu-img'));
    });
  }
});
