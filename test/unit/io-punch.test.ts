/**
 * Hole punching and zero ranges through BlockFile: NodeFile on a real file (fallocate through the
 * native addon, blocks freed, the size kept), its lazy fallback, MemoryFile, the shared zero-writing
 * fallback, what each wrapper does with them, and RawDevice's discard and zero writes.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Error } from '../../src/errors.js';
import { RawDevice } from '../../src/engine/raw.js';
import { BarrierFile } from '../../src/io/barrier-file.js';
import type { BlockFile } from '../../src/io/block-file.js';
import { FaultFile } from '../../src/io/fault-file.js';
import { JitterFile } from '../../src/io/jitter-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { loadNative } from '../../src/io/native.js';
import { NodeFile } from '../../src/io/node-file.js';
import { RecordingFile, type FileOp } from '../../src/io/recording-file.js';
import { DurableFile } from '../../src/reference/durable-file.js';
import { crashStates, materialize } from '../../src/verification/crash/states.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Real fallocate: the addon is there (always under CI) on Linux. */
const native = process.platform === 'linux' && loadNative() !== null;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-punch-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

let files = 0;
/** A new file of `size` bytes of 0x5a, on disk (flushed, so its blocks are allocated). */
async function filled(size: number): Promise<{ path: string; file: NodeFile }> {
  const path = join(dir, `f${++files}.raw`);
  const file = await NodeFile.open(path, { create: true });
  await file.write(0, new Uint8Array(size).fill(0x5a));
  await file.flush();
  return { path, file };
}

const blocks = async (path: string) => (await stat(path)).blocks;
const isZero = (bytes: Uint8Array) => bytes.every((b) => b === 0);

describe('the native addon', () => {
  it('is built under CI, with fallocate', () => {
    if (!process.env['CI']) return;
    expect(loadNative()).not.toBeNull();
    expect(typeof loadNative()!.fallocate).toBe('function');
  });

  it('reports fallocate failures with the errno name', () => {
    const addon = loadNative();
    if (!addon) return;
    expect(() => addon.fallocate(987_654, addon.FALLOC_FL_PUNCH_HOLE | addon.FALLOC_FL_KEEP_SIZE, 0, 4096)).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'fallocate' }),
    );
    expect(() => addon.fallocate(0, 0, -1, 1)).toThrow();
  });
});

describe('NodeFile', () => {
  it('punches a hole: blocks freed, zeros read, size kept (past the end too)', async () => {
    const { path, file } = await filled(2 * MiB);
    try {
      expect(file.capabilities.punchHole).toBe(native);
      const before = await blocks(path);
      await file.punchHole(256 * KiB, MiB + 3 * KiB + 7);
      await file.punchHole(2 * MiB - 4 * KiB, 64 * KiB);
      expect(await file.size()).toBe(2 * MiB);
      expect(file.capabilities.punchHole).toBe(native);
      if (native) expect(before - (await blocks(path))).toBeGreaterThanOrEqual((MiB + 4 * KiB) / 512);
      const all = await file.read(0, 2 * MiB);
      expect(isZero(all.subarray(0, 256 * KiB))).toBe(false);
      expect(all.subarray(0, 256 * KiB).every((b) => b === 0x5a)).toBe(true);
      expect(isZero(all.subarray(256 * KiB, 256 * KiB + MiB + 3 * KiB + 7))).toBe(true);
      expect(all[256 * KiB + MiB + 3 * KiB + 7]).toBe(0x5a);
      expect(isZero(all.subarray(2 * MiB - 4 * KiB))).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('zeroes a range, extending the file when it ends past it', async () => {
    const { file } = await filled(64 * KiB);
    try {
      await file.zeroRange(4 * KiB + 1, 8 * KiB);
      await file.zeroRange(60 * KiB, 8 * KiB + 3);
      expect(await file.size()).toBe(68 * KiB + 3);
      const all = await file.read(0, 68 * KiB + 3);
      expect(all[4 * KiB]).toBe(0x5a);
      expect(isZero(all.subarray(4 * KiB + 1, 12 * KiB + 1))).toBe(true);
      expect(all[12 * KiB + 1]).toBe(0x5a);
      expect(isZero(all.subarray(60 * KiB))).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('refuses on a read-only file and for a bad range; a zero length does nothing', async () => {
    const { path, file } = await filled(4 * KiB);
    await file.close();
    const ro = await NodeFile.open(path, { readOnly: true });
    try {
      await expect(ro.punchHole(0, 512)).rejects.toThrow(/read-only/);
      await expect(ro.zeroRange(0, 512)).rejects.toThrow(/read-only/);
    } finally {
      await ro.close();
    }
    const rw = await NodeFile.open(path);
    try {
      await expect(rw.punchHole(-1, 512)).rejects.toThrow(Qcow2Error);
      await expect(rw.zeroRange(0, 0.5)).rejects.toThrow(/invalid zero range/);
      await rw.punchHole(0, 0);
      await rw.zeroRange(8 * KiB, 0);
      expect(await rw.size()).toBe(4 * KiB);
    } finally {
      await rw.close();
    }
  });

  it('zeroes a range on tmpfs, which has no ZERO_RANGE, by a punch and an allocation', async () => {
    if (!native || process.getuid?.() !== 0) return;
    // /dev/shm is a tmpfs: PUNCH_HOLE works there, ZERO_RANGE answers EOPNOTSUPP.
    const shm = await mkdtemp('/dev/shm/qcow2-punch-').catch(() => '');
    if (!shm) return;
    try {
      const file = await NodeFile.open(join(shm, 'f.raw'), { create: true });
      await file.write(0, new Uint8Array(64 * KiB).fill(1));
      expect(file.capabilities).toEqual({ punchHole: true, zeroRange: true });
      await file.zeroRange(4 * KiB + 7, 70 * KiB);
      expect(file.capabilities.zeroRange).toBe(true);
      expect(await file.size()).toBe(74 * KiB + 7);
      expect([...(await file.read(4 * KiB, 8))]).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
      expect(isZero(await file.read(4 * KiB + 7, 70 * KiB))).toBe(true);
      // A second range, inside the file this time, goes the same way.
      await file.write(0, new Uint8Array(64 * KiB).fill(2));
      await file.zeroRange(100, 5000);
      expect(file.capabilities.zeroRange).toBe(true);
      const back = await file.read(0, 64 * KiB);
      expect([back[99], back[100], back[5099], back[5100]]).toEqual([2, 0, 0, 2]);
      await file.punchHole(0, 4 * KiB);
      expect(file.capabilities.punchHole).toBe(true);
      expect(isZero(await file.read(0, 4 * KiB))).toBe(true);
      await file.close();
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it('reports a fallocate failure as a typed io error with the errno as its cause', async () => {
    if (!native) return;
    const { file } = await filled(4 * KiB);
    // ZERO_RANGE past what a file may hold: EFBIG.
    const err = await file.zeroRange(2 ** 53 - 2 * MiB, MiB).catch((e: unknown) => e);
    await file.close();
    expect(err).toBeInstanceOf(Qcow2Error);
    expect((err as Qcow2Error).code).toBe('io');
    expect(((err as Qcow2Error).cause as NodeJS.ErrnoException).code).toMatch(/^E[A-Z]+$/);
  });
});

describe('MemoryFile', () => {
  it('refuses to grow past 2 GiB with a typed io error (a write there would take the memory)', async () => {
    const file = new MemoryFile(new Uint8Array(10));
    const err = await file.write(2 ** 48, new Uint8Array(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Qcow2Error);
    expect((err as Qcow2Error).code).toBe('io');
    expect(await file.size()).toBe(10);
  });

  it('punches (keeping the size) and zeroes ranges (extending it)', async () => {
    const file = new MemoryFile(new Uint8Array(100).fill(3));
    expect(file.capabilities).toEqual({ punchHole: true, zeroRange: true });
    await file.punchHole(90, 50);
    expect(await file.size()).toBe(100);
    await file.punchHole(200, 10);
    expect(await file.size()).toBe(100);
    expect([...(await file.read(88, 12))]).toEqual([3, 3, ...Array(10).fill(0)]);
    await file.zeroRange(10, 5);
    await file.zeroRange(98, 10);
    expect(await file.size()).toBe(108);
    const all = file.snapshot();
    expect([...all.subarray(9, 16)]).toEqual([3, 0, 0, 0, 0, 0, 3]);
    expect(isZero(all.subarray(90))).toBe(true);
    await expect(new MemoryFile(new Uint8Array(4), true).punchHole(0, 1)).rejects.toThrow(/read-only/);
  });

  it('without the capabilities, writes zeros through write() (the shared fallback)', async () => {
    const writes: [number, number][] = [];
    const file = new (class extends MemoryFile {
      override write(offset: number, bytes: Uint8Array): Promise<void> {
        writes.push([offset, bytes.byteLength]);
        return super.write(offset, bytes);
      }
    })(new Uint8Array(3 * MiB).fill(3), false, { punchHole: false, zeroRange: false });
    await file.punchHole(MiB / 2, 4 * MiB);
    expect(writes).toEqual([
      [MiB / 2, MiB],
      [MiB / 2 + MiB, MiB],
      [MiB / 2 + 2 * MiB, MiB / 2],
    ]);
    expect(await file.size()).toBe(3 * MiB);
    writes.length = 0;
    await file.zeroRange(3 * MiB - 10, 20);
    expect(writes).toEqual([[3 * MiB - 10, 20]]);
    expect(await file.size()).toBe(3 * MiB + 10);
    expect(isZero(file.snapshot().subarray(MiB / 2))).toBe(true);
    expect(file.snapshot()[MiB / 2 - 1]).toBe(3);
  });
});

describe('the wrappers', () => {
  const base = () => new MemoryFile(new Uint8Array(4096).fill(7));

  it('all forward punches, zero ranges and the capabilities', async () => {
    const wrappers: ((f: BlockFile) => BlockFile)[] = [
      (f) => new JitterFile(f, 3),
      (f) => new RecordingFile(f),
      (f) => new FaultFile(f, { on: 'flush', nth: 99, code: 'EIO' }),
      (f) => new BarrierFile(f),
      (f) => new DurableFile(f),
    ];
    for (const wrap of wrappers) {
      const inner = base();
      const file = wrap(inner);
      expect(file.capabilities).toBe(inner.capabilities);
      await file.punchHole(4000, 1000);
      await file.zeroRange(0, 10);
      expect(await inner.size()).toBe(4096);
      const all = inner.snapshot();
      expect(isZero(all.subarray(0, 10)) && isZero(all.subarray(4000)) && all[10] === 7 && all[3999] === 7).toBe(true);
    }
  });

  it('RecordingFile logs a punch as a write of zeros inside the file, a zero range as a write of zeros', async () => {
    const log: FileOp[] = [];
    const file = new RecordingFile(base(), log);
    await file.punchHole(4000, 1000);
    await file.punchHole(5000, 10);
    await file.zeroRange(4090, 10, 'l2');
    await file.flush();
    expect(log.map((op) => (op.kind === 'write' ? [op.kind, op.offset, op.data.byteLength, op.tag, isZero(op.data)] : [op.kind]))).toEqual([
      ['write', 4000, 96, 'data', true],
      ['write', 4090, 10, 'l2', true],
      ['flush'],
    ]);
  });

  it('a recorded punch is a zero write to the crash states: landed or not, torn by sectors', async () => {
    const log: FileOp[] = [];
    const initial = new Uint8Array(2048).fill(7);
    const file = new RecordingFile(new MemoryFile(initial), log);
    await file.punchHole(512, 4096);
    const states = [...crashStates(log)];
    const images = states.map((s) => [...materialize(initial, log, s)]);
    expect(images).toContainEqual([...initial]);
    expect(images).toContainEqual([...initial.subarray(0, 512), ...Array(1536).fill(0)]);
    // Torn: the first half of its three sectors landed.
    expect(images).toContainEqual([...initial.subarray(0, 512), ...Array(1024).fill(0), ...initial.subarray(1536)]);
    for (const image of images) expect(image.length).toBe(2048);
  });

  it('FaultFile fails a punch or zero range like a write with its tag', async () => {
    const inner = base();
    const file = new FaultFile(inner, { on: 'data', nth: 2, code: 'ENOSPC', sticky: true });
    await file.punchHole(0, 10);
    await expect(file.zeroRange(100, 10)).rejects.toThrow(/zero range of 10 bytes at 0x64 \(data\) failed: ENOSPC/);
    await expect(file.punchHole(200, 10)).rejects.toThrow(/hole punch .* failed: ENOSPC/);
    await file.punchHole(300, 10, 'l2');
    expect(file.failures).toBe(2);
    const all = inner.snapshot();
    expect([all[0], all[100], all[200], all[300]]).toEqual([0, 7, 7, 0]);
    const any = new FaultFile(base(), { on: 'write', nth: 1, code: 'EIO' });
    await expect(any.zeroRange(0, 1, 'refcount-block')).rejects.toThrow(/\(refcount-block\) failed: EIO/);
  });

  it('BarrierFile counts punches as writes of their tag; a failed metadata punch poisons', async () => {
    let flushes = 0;
    const inner = new (class extends MemoryFile {
      override async flush(): Promise<void> {
        flushes++;
      }
    })(new Uint8Array(4096));
    const file = new BarrierFile(inner);
    await file.barrier();
    expect(flushes).toBe(0);
    await file.punchHole(0, 512, 'l2');
    await file.barrier('l2');
    expect(flushes).toBe(0);
    await file.barrier('data');
    expect(flushes).toBe(1);
    await file.zeroRange(0, 512);
    await file.barrier();
    expect(flushes).toBe(2);
    const failing = new BarrierFile(new FaultFile(new MemoryFile(new Uint8Array(4096)), { on: 'write', nth: 1, code: 'EIO', sticky: true }));
    await expect(failing.punchHole(0, 512)).rejects.toThrow();
    expect(failing.failure).toBeUndefined();
    await expect(failing.zeroRange(0, 512, 'l1')).rejects.toThrow();
    expect(failing.failure).toBeInstanceOf(Qcow2Error);
  });

  it('DurableFile flushes after each punch and zero range', async () => {
    const order: string[] = [];
    const inner = new (class extends MemoryFile {
      override async punchHole(offset: number, length: number): Promise<void> {
        order.push('punch');
        return super.punchHole(offset, length);
      }
      override async zeroRange(offset: number, length: number): Promise<void> {
        order.push('zero');
        return super.zeroRange(offset, length);
      }
      override async flush(): Promise<void> {
        order.push('flush');
      }
    })(new Uint8Array(4096));
    const file = new DurableFile(inner);
    await file.punchHole(0, 512);
    await file.zeroRange(512, 512, 'refcount-block');
    expect(order).toEqual(['punch', 'flush', 'zero', 'flush']);
  });
});

describe('RawDevice', () => {
  it('discard and unmapping zero writes punch holes in a real file, never extending it', async () => {
    const { path, file } = await filled(2 * MiB + 100);
    const device = await RawDevice.over(file);
    try {
      const before = await blocks(path);
      await device.discard(0, MiB);
      await device.writeZeroes(MiB, MiB + 512, { unmap: true });
      expect(await file.size()).toBe(2 * MiB + 100);
      if (native) expect(before - (await blocks(path))).toBeGreaterThanOrEqual((2 * MiB) / 512);
      expect(isZero(await device.read(0, 2 * MiB + 512))).toBe(true);
    } finally {
      await device.close();
    }
  });

  it('non-unmapping zero writes zero the range and extend the file', async () => {
    const { file } = await filled(64 * KiB);
    const device = await RawDevice.over(file);
    try {
      await device.writeZeroes(32 * KiB, 64 * KiB);
      expect(await file.size()).toBe(96 * KiB);
      expect(device.virtualSize).toBe(96 * KiB);
      expect(isZero(await device.read(32 * KiB, 64 * KiB))).toBe(true);
      expect((await device.read(0, 32 * KiB)).every((b) => b === 0x5a)).toBe(true);
    } finally {
      await device.close();
    }
  });

  it('goes through punchHole / zeroRange (a recording shows zero writes, a punch cut at the end of the file)', async () => {
    const log: FileOp[] = [];
    const device = await RawDevice.over(new RecordingFile(new MemoryFile(new Uint8Array(1000).fill(1)), log));
    await device.discard(512, 512);
    await device.writeZeroes(0, 2000);
    expect(log.map((op) => (op.kind === 'write' ? [op.offset, op.data.byteLength, isZero(op.data)] : op.kind))).toEqual([
      [512, 488, true],
      [0, 2000, true],
    ]);
  });
});
