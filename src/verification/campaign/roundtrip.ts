/**
 * Us -> QEMU round trips: a random qemu-io script runs through our engine on a qcow2 image and
 * through `qemu-io` on a raw file holding the same starting guest data; QEMU then judges our image:
 * `qemu-img check` clean and `qemu-img compare` identical to the raw file.
 */
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from '../../tools/run.js';
import { ensure } from './check.js';

/** One `qcow2 create` / `qemu-img create` option set, with what the script generator must know. */
export interface RoundTripImage {
  /** The `-o` option string. */
  options: string;
  clusterSize: number;
  size: number;
  version: 2 | 3;
  backing?: 'raw' | 'qcow2';
  externalDataFile: boolean;
  preallocated: boolean;
}

/** The create option combinations every round trip covers (each option value at least once). */
export const ROUND_TRIP_IMAGES: RoundTripImage[] = (() => {
  const out: RoundTripImage[] = [];
  const add = (options: string, extra: Partial<RoundTripImage> = {}) => {
    const clusterSize = Number(/cluster_size=(\d+)/.exec(options)?.[1] ?? 65536);
    out.push({
      options,
      clusterSize,
      size: Math.min(160 * clusterSize, 64 << 20) + 1536,
      version: options.includes('compat=0.10') ? 2 : 3,
      externalDataFile: options.includes('data_file='),
      preallocated: options.includes('preallocation=metadata'),
      ...extra,
    });
  };
  add('compat=0.10,cluster_size=65536');
  add('compat=0.10,cluster_size=512');
  add('compat=0.10,cluster_size=4096', { backing: 'qcow2' });
  add('compat=1.1,cluster_size=65536');
  add('compat=1.1,cluster_size=2097152');
  for (const bits of [1, 2, 4, 8, 32, 64]) add(`compat=1.1,cluster_size=4096,refcount_bits=${bits}`);
  add('compat=1.1,cluster_size=512,refcount_bits=64');
  add('compat=1.1,cluster_size=65536,extended_l2=on');
  add('compat=1.1,cluster_size=16384,extended_l2=on', { backing: 'qcow2' });
  add('compat=1.1,cluster_size=65536,compression_type=zstd');
  add('compat=1.1,cluster_size=4096,compression_type=zstd,lazy_refcounts=on');
  add('compat=1.1,cluster_size=65536,lazy_refcounts=on');
  add('compat=1.1,cluster_size=65536,data_file={dir}/data.bin');
  add('compat=1.1,cluster_size=65536,data_file={dir}/data.bin,data_file_raw=on');
  add('compat=1.1,cluster_size=65536,preallocation=metadata');
  add('compat=0.10,cluster_size=4096,preallocation=metadata');
  add('compat=1.1,cluster_size=65536,extended_l2=on,preallocation=metadata', { backing: 'qcow2' });
  add('compat=1.1,cluster_size=65536', { backing: 'raw' });
  add('compat=1.1,cluster_size=4096', { backing: 'qcow2' });
  return out;
})();

/** A random qemu-io script the raw file and the qcow2 image must agree on. */
export function scriptArb(img: RoundTripImage): fc.Arbitrary<string[]> {
  const C = img.clusterSize;
  const clusters = Math.floor(img.size / C);
  const discards = !(img.version === 2 && img.backing !== undefined);
  const compressed = !img.externalDataFile && !img.preallocated;
  const op = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), at: fc.nat(img.size - 1), len: fc.integer({ min: 1, max: 3 * C }), p: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('zero' as const), at: fc.nat(img.size - 1), len: fc.integer({ min: 1, max: 4 * C }), unmap: fc.boolean() }),
    fc.record({ kind: fc.constant('discard' as const), cluster: fc.nat(clusters - 1), n: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('compress' as const), cluster: fc.nat(clusters - 1), p: fc.integer({ min: 1, max: 255 }) }),
    fc.constant({ kind: 'flush' as const }),
  );
  return fc.array(op, { minLength: 1, maxLength: 14 }).map((ops) => {
    const touched = new Set<number>();
    const touch = (from: number, to: number) => {
      for (let c = Math.floor(from / C); c <= Math.floor((to - 1) / C); c++) touched.add(c);
    };
    const script: string[] = [];
    for (const o of ops) {
      switch (o.kind) {
        case 'write': {
          const len = Math.min(o.len, img.size - o.at);
          script.push(`write -P ${o.p} ${o.at} ${len}`);
          touch(o.at, o.at + len);
          break;
        }
        case 'zero': {
          const len = Math.min(o.len, img.size - o.at);
          script.push(`write -z${o.unmap ? ' -u' : ''} ${o.at} ${len}`);
          touch(o.at, o.at + len);
          break;
        }
        case 'discard': {
          if (!discards) break;
          const n = Math.min(o.n, clusters - o.cluster);
          script.push(`discard ${o.cluster * C} ${n * C}`);
          touch(o.cluster * C, (o.cluster + n) * C);
          break;
        }
        case 'compress':
          if (!compressed || touched.has(o.cluster)) break;
          script.push(`write -c -P ${o.p} ${o.cluster * C} ${C}`);
          touch(o.cluster * C, (o.cluster + 1) * C);
          break;
        case 'flush':
          script.push('flush');
          break;
      }
    }
    return script.length > 0 ? script : ['flush'];
  });
}

/** The same script for qemu-io on a raw file: raw has no compressed writes, a plain write is equal. */
export function rawScript(script: readonly string[]): string[] {
  return script.map((c) => c.replace('write -c ', 'write '));
}

export interface RoundTripRun {
  /** Creates the qcow2 image (ours or qemu-img's create). */
  create(path: string, options: string, size: number, backing?: { path: string; format: 'raw' | 'qcow2' }): Promise<void>;
  /** Runs the script on the image through our engine; returns its exit code. */
  io(path: string, script: string[]): Promise<number>;
}

async function tool(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await runTool(cmd, args, cwd);
  ensure(r.code === 0, `${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export async function roundTrip(run: RoundTripRun, img: RoundTripImage, script: string[]): Promise<void> {
  const qemuImg = process.env['QEMU_IMG'] ?? 'qemu-img';
  const qemuIo = process.env['QEMU_IO'] ?? 'qemu-io';
  const dir = await mkdtemp(join(tmpdir(), 'qcow2-roundtrip-'));
  try {
    const image = join(dir, 'image.qcow2');
    const raw = join(dir, 'expected.raw');
    let backing: { path: string; format: 'raw' | 'qcow2' } | undefined;
    if (img.backing) {
      backing = { path: join(dir, `backing.${img.backing}`), format: img.backing };
      await tool(qemuImg, ['create', '-q', '-f', img.backing, backing.path, String(img.size - img.clusterSize)]);
      await tool(qemuIo, ['-f', img.backing, '-c', `write -P 0x5b 0 ${img.size - img.clusterSize}`, '-c', `write -z ${3 * img.clusterSize} ${img.clusterSize}`, backing.path]);
      await tool(qemuImg, ['convert', '-f', img.backing, '-O', 'raw', backing.path, raw]);
      await tool(qemuImg, ['resize', '-q', '-f', 'raw', raw, String(img.size)]);
    } else {
      await tool(qemuImg, ['create', '-q', '-f', 'raw', raw, String(img.size)]);
    }
    await run.create(image, img.options.replaceAll('{dir}', dir), img.size, backing);
    const code = await run.io(image, script);
    ensure(code === 0, `qcow2 io exited ${code} on: ${script.join(' ; ')}`);
    await tool(qemuIo, ['-f', 'raw', ...rawScript(script).flatMap((c) => ['-c', c]), raw]);
    const check = await runTool(qemuImg, ['check', image]);
    ensure(check.code === 0, `qemu-img check exit ${check.code} after: ${script.join(' ; ')}\n${check.stdout}${check.stderr}`);
    const compare = await runTool(qemuImg, ['compare', '-f', 'qcow2', '-F', 'raw', image, raw]);
    ensure(compare.code === 0, `qemu-img compare: ${compare.stdout.trim()} after: ${script.join(' ; ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
