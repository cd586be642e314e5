/**
 * An allocating write smaller than a cluster, where the rest of the cluster reads as zeros: the
 * host cluster is zeroed by the file (zeroRange) and only the guest's bytes are written; a file that
 * cannot zero ranges gets the whole cluster written instead. QEMU's tools judge the results.
 */
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata } from '../../src/image/metadata.js';
import type { FileCapabilities, WriteTag } from '../../src/io/block-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { openOnFiles, openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';

const C = 65536;

/** Records the data writes and zero ranges that reach the file. */
class Watched extends MemoryFile {
  ops: string[] = [];
  override async write(offset: number, data: Uint8Array, tag?: WriteTag): Promise<void> {
    if (tag === 'data') this.ops.push(`write ${data.byteLength}@${offset % C}`);
    return super.write(offset, data);
  }
  override async zeroRange(offset: number, length: number, tag?: WriteTag): Promise<void> {
    this.ops.push(`zero ${length}@${offset % C}`);
    return super.zeroRange(offset, length, tag);
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-alloc-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function blank(name: string, extra: string[] = []): Promise<string> {
  const path = join(dir, name);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...extra, path, '16M']);
  return path;
}

/** qemu-io's verdict on a pattern read, and qemu-img check's exit code. */
async function judge(path: string, reads: string[]): Promise<void> {
  for (const r of reads) {
    const out = await execa('qemu-io', ['-r', '-f', 'qcow2', '-c', r, path], { reject: false });
    expect(out.stdout, r).not.toMatch(/Pattern verification failed|error/i);
    expect(out.exitCode, r).toBe(0);
  }
  expect((await execa('qemu-img', ['check', '-q', path], { reject: false })).exitCode).toBe(0);
}

const READS = ['read -P 0 0 4096', 'read -P 0x5a 4096 4096', 'read -P 0 8192 57344', 'read -P 0 65536 1M'];

describe('allocating writes smaller than a cluster', () => {
  for (const caps of [
    { punchHole: true, zeroRange: true },
    { punchHole: true, zeroRange: false },
  ] satisfies FileCapabilities[]) {
    it(`optimized engine, file ${caps.zeroRange ? 'with' : 'without'} zero ranges`, async () => {
      const path = await blank(`opt-${caps.zeroRange}.qcow2`);
      const file = new Watched(new Uint8Array(await readFile(path)), false, caps);
      const dev = await openOnFiles(file, undefined, undefined, await readMetadata(file), {});
      await dev.write(4096, new Uint8Array(4096).fill(0x5a));
      await dev.close();
      expect(file.ops).toEqual(caps.zeroRange ? [`zero ${C}@0`, 'write 4096@4096'] : [`write ${C}@0`]);
      await writeFile(path, file.snapshot());
      await judge(path, READS);
    });
  }

  it('over stale bytes in the file past its last cluster (a zero range clears them)', async () => {
    const path = await blank('stale.qcow2');
    const clean = new Uint8Array(await readFile(path));
    const withJunk = new Uint8Array(clean.byteLength + 4 * C).fill(0xee);
    withJunk.set(clean);
    // The refcounts say nothing is there, so the engine allocates over the junk.
    const file = new Watched(withJunk);
    const dev = await openOnFiles(file, undefined, undefined, await readMetadata(file), {});
    await dev.write(4096, new Uint8Array(4096).fill(0x5a));
    await dev.close();
    expect(file.ops).toContain(`zero ${C}@0`);
    await writeFile(path, file.snapshot());
    await judge(path, READS);
  });

  for (const engine of ['reference', 'optimized'] as const) {
    for (const where of ['disk', 'tmpfs'] as const) {
      it(`${engine} engine on a real file (${where}), then qemu-io reads it`, async () => {
        const base = where === 'disk' ? dir : await mkdtemp('/dev/shm/qcow2-alloc-');
        try {
          const path = join(base, `${engine}.qcow2`);
          await execa('qemu-img', ['create', '-q', '-f', 'qcow2', path, '16M']);
          const dev = engine === 'reference' ? await openReference(path) : await openOptimized(path);
          await dev.write(4096, new Uint8Array(4096).fill(0x5a));
          // A zero-flagged cluster, then a small write into it.
          await dev.writeZeroes(3 * C, C, {});
          await dev.write(3 * C + 512, new Uint8Array(512).fill(0x5a));
          await dev.close();
          await judge(path, [...READS.slice(0, 3), `read -P 0 ${3 * C} 512`, `read -P 0x5a ${3 * C + 512} 512`, `read -P 0 ${3 * C + 1024} ${C - 1024}`]);
        } finally {
          if (where === 'tmpfs') await rm(base, { recursive: true, force: true });
        }
      });
    }
  }
});
