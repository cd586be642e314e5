/**
 * RawDevice over an in-memory file, and the `qcow2 io` runner against it and against a fake qcow2
 * device (for `write -c`, which raw refuses). Expected values are written by hand.
 */
import { describe, expect, it } from 'vitest';
import { corrupt, Qcow2Error, usage } from '../../src/errors.js';
import { RawDevice } from '../../src/engine/raw.js';
import type { BlockDevice, Qcow2Device } from '../../src/engine/types.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { parseScript } from '../../src/cli/io/parse.js';
import { runOps } from '../../src/cli/io/run.js';

async function raw(bytes: Uint8Array, readOnly = false) {
  const file = new MemoryFile(bytes, readOnly);
  return { file, device: await RawDevice.over(file) };
}

/** A clock advancing a quarter of a second per call. */
function clock() {
  let t = 0n;
  return () => (t += 250_000_000n);
}

async function run(device: BlockDevice, commands: string[]) {
  let stdout = '';
  let stderr = '';
  const result = await runOps(device, parseScript(commands), { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) }, { now: clock() });
  return { ...result, stdout, stderr };
}

describe('RawDevice', () => {
  it('virtual size is the file size rounded up to 512; the tail reads as zeros', async () => {
    const { device } = await raw(new Uint8Array(1000).fill(9));
    expect(device.virtualSize).toBe(1024);
    const data = await device.read(990, 34);
    expect([...data.subarray(0, 10)]).toEqual(Array(10).fill(9));
    expect([...data.subarray(10)]).toEqual(Array(24).fill(0));
    await expect(device.read(1000, 25)).rejects.toThrow(Qcow2Error);
    await expect(device.read(-1, 1)).rejects.toThrow(/invalid read request/);
    expect(await device.read(1024, 0)).toEqual(new Uint8Array(0));
  });

  it('write and non-unmapping zero writes extend the file; discard and unmap do not', async () => {
    const { file, device } = await raw(new Uint8Array(1000).fill(9));
    await device.discard(990, 34);
    expect(await file.size()).toBe(1000);
    expect([...(await file.read(985, 15))]).toEqual([9, 9, 9, 9, 9, ...Array(10).fill(0)]);
    await device.writeZeroes(980, 44, { unmap: true });
    expect(await file.size()).toBe(1000);
    await device.writeZeroes(1000, 24);
    expect(await file.size()).toBe(1024);
    await device.write(2000, new Uint8Array([1, 2]));
    expect(await file.size()).toBe(2002);
    expect(device.virtualSize).toBe(2048);
    await device.resize(512);
    expect(device.virtualSize).toBe(512);
  });

  it('maps one data extent at the same host offset', async () => {
    const { device } = await raw(new Uint8Array(4096));
    expect(await device.mapExtents(512, 1000)).toEqual([{ start: 512, length: 1000, kind: 'data', hostOffset: 512, file: 'image' }]);
    expect(await device.mapExtents(4096, 0)).toEqual([]);
  });

  it('refuses changes when read-only', async () => {
    const { device } = await raw(new Uint8Array(512), true);
    expect(device.readOnly).toBe(true);
    await expect(device.write(0, new Uint8Array(1))).rejects.toMatchObject({ code: 'usage' });
    await expect(device.discard(0, 1)).rejects.toMatchObject({ code: 'usage' });
  });
});

describe('runner', () => {
  it('prints qemu-io statistics and applies the commands', async () => {
    const { file, device } = await raw(new Uint8Array(64 * 1024));
    const r = await run(device, ['write -P 0x41 0 4k', 'read -P 0x41 0 4k', 'discard 1k 1k', 'flush', 'write -zq 0 1', 'read -q -P 0 0 1']);
    expect(r.failures).toBe(0);
    expect(r.stdout).toBe(
      'wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; 00.25 sec (16 KiB/sec and 4.0000 ops/sec)\n' +
        'read 4096/4096 bytes at offset 0\n4 KiB, 1 ops; 00.25 sec (16 KiB/sec and 4.0000 ops/sec)\n' +
        'discard 1024/1024 bytes at offset 1024\n1 KiB, 1 ops; 00.25 sec (4 KiB/sec and 4.0000 ops/sec)\n',
    );
    expect([...(await file.read(1020, 8))]).toEqual([0x41, 0x41, 0x41, 0x41, 0, 0, 0, 0]);
    expect((await file.read(0, 1))[0]).toBe(0);
  });

  it('pattern mismatch and out-of-range requests fail the command and the run goes on', async () => {
    const { device } = await raw(new Uint8Array(1024));
    const r = await run(device, ['read -P 1 -s 2 -l 3 0 8', 'read 1k 1', 'write 1020 5', 'discard 2k 0', 'read -q 1k 0']);
    expect(r.failures).toBe(4);
    expect(r.stdout).toBe(
      'Pattern verification failed at offset 2, 3 bytes\n' +
        'read 8/8 bytes at offset 0\n8 bytes, 1 ops; 00.25 sec (32 bytes/sec and 4.0000 ops/sec)\n' +
        'read failed: Input/output error\nwrite failed: Input/output error\ndiscard failed: Input/output error\n',
    );
  });

  it('read -v dumps before the statistics; -C prints the terse line', async () => {
    const { device } = await raw(new Uint8Array(512).fill(0x61));
    const r = await run(device, ['read -v 510 2', 'read -C 0 1']);
    expect(r.stdout).toBe(
      '000001fe:  61 61  aa\nread 2/2 bytes at offset 510\n2 bytes, 1 ops; 00.25 sec (8 bytes/sec and 4.0000 ops/sec)\n' + '1,1,0:00:00.25,4.000,4.000\n',
    );
  });

  it('read-only: writes and discards fail with a message on stderr', async () => {
    const { device } = await raw(new Uint8Array(512), true);
    const r = await run(device, ['write 0 1', 'write -z 0 1', 'discard 0 1', 'flush', 'read -q 0 1']);
    expect(r.failures).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('qcow2 io: Block node is read-only\n'.repeat(3));
  });

  it('write -c: not supported on raw', async () => {
    const { device } = await raw(new Uint8Array(64 * 1024));
    const r = await run(device, ['write -c 0 64k', 'write -c 0 0', 'write -c -z 0 512']);
    expect(r.failures).toBe(2);
    expect(r.stdout).toMatch(/^write failed: Operation not supported\nwrite failed: Operation not supported\nwrote 512\/512 bytes at offset 0\n/);
  });

  it('write -c on qcow2: whole clusters, or a tail ending the image; zero length succeeds', async () => {
    const calls: [number, number, number][] = [];
    const base = (await raw(new Uint8Array(200 * 1024))).device;
    const fake = Object.assign(Object.create(base) as RawDevice, {
      format: 'qcow2',
      clusterSize: 65536,
      backing: undefined,
      writeCompressed: async (offset: number, data: Uint8Array) => void calls.push([offset, data.byteLength, data[0] as number]),
    }) as unknown as Qcow2Device;
    const r = await run(fake, ['write -c -P 7 0 128k', 'write -c 64k 0', 'write -c 512 512', 'write -c 0 32k', 'write -c 192k 8k', 'write -c 128k 72k', 'write -c 192k 16k']);
    expect(calls).toEqual([
      [0, 131072, 7],
      [196608, 8192, 0xcd],
      [131072, 73728, 0xcd],
    ]);
    expect(r.failures).toBe(3);
    expect(r.stdout.match(/write failed: [^\n]*/g)).toEqual(['write failed: Invalid argument', 'write failed: Invalid argument', 'write failed: Input/output error']);
  });

  it('engine errors: a Qcow2Error fails the command (details on stderr), anything else propagates', async () => {
    const base = (await raw(new Uint8Array(4096))).device;
    const failing = (err: unknown) =>
      Object.assign(Object.create(base) as RawDevice, {
        readInto: async () => {
          throw err;
        },
      }) as BlockDevice;
    const r = await run(failing(corrupt('L2 table overlaps the header', { offset: 0x30000 })), ['read 0 1', 'read 0 0']);
    expect(r.failures).toBe(1);
    expect(r.stdout).toMatch(/^read failed: Input\/output error\nread 0\/0 bytes/);
    expect(r.stderr).toBe('qcow2 io: corrupt: at 0x30000: L2 table overlaps the header\n');
    const u = await run(failing(usage('bad')), ['read 0 1']);
    expect(u.stdout).toBe('read failed: Invalid argument\n');
    await expect(run(failing(new TypeError('bug')), ['read 0 1'])).rejects.toThrow(TypeError);
  });
});
