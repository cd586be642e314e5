/**
 * `qcow2 ublk` without a kernel: option parsing, the device parameters announced for an image,
 * and the one-line typed error on a kernel without ublk. The device itself is tested in a VM
 * (test/ublk/ublk.test.ts).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseUblkAdd, ublk } from '../../src/cli/ublk.js';
import type { BlockDevice } from '../../src/engine/types.js';
import { isQcow2Error } from '../../src/errors.js';
import { DEFAULT_POLICY } from '../../src/serve/request.js';
import { deviceParams, UBLK_MAX_DISCARD_BYTES } from '../../src/ublk/server.js';
import { ATTR } from '../../src/ublk/uapi.js';

function fakeDevice(over: Partial<BlockDevice> & { clusterSize?: number }): BlockDevice {
  return {
    format: 'qcow2',
    virtualSize: 1 << 30,
    readOnly: false,
    capabilities: { discard: true, zeroUnmap: true, fastZero: true, compressedWrites: true, snapshots: true },
    clusterSize: 65536,
    ...over,
  } as unknown as BlockDevice;
}

describe('qcow2 ublk add: options', () => {
  it('defaults', () => {
    expect(parseUblkAdd(['x.qcow2'])).toEqual({
      image: 'x.qcow2',
      operand: { text: 'x.qcow2', path: 'x.qcow2', format: undefined, keySecret: undefined, backingKeys: [] },
      format: undefined,
      readOnly: false,
      queues: 1,
      depth: 128,
      id: undefined,
      discard: 'unmap',
      cache: 'writeback',
      recoverable: false,
      untrusted: false,
      foreground: false,
      verbose: false,
    });
  });

  it('takes every option', () => {
    const cmd = parseUblkAdd(['-f', 'raw', '-r', '--queues', '2', '--depth', '64', '--id', '7', '--discard=ignore', '--cache=writethrough', '--recoverable', '--untrusted', '--foreground', '-v', 'x.img']);
    expect(cmd).toMatchObject({ format: 'raw', readOnly: true, queues: 2, depth: 64, id: 7, discard: 'ignore', cache: 'writethrough', recoverable: true, untrusted: true, foreground: true, verbose: true });
  });

  it('--object and --image-opts: an encrypted image and its passphrases, as qemu-nbd takes them', () => {
    const cmd = parseUblkAdd(['--object', 'secret,id=s0,data=abc', '--object', 'secret,id=s1,data=xyz', '--image-opts', 'driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s0,backing.encrypt.key-secret=s1']);
    expect(cmd.image).toBe('e.qcow2');
    expect(cmd.format).toBe('qcow2');
    expect(Buffer.from(cmd.operand!.keySecret!).toString()).toBe('abc');
    expect(cmd.operand!.backingKeys.map((k) => Buffer.from(k!).toString())).toEqual(['xyz']);
    expect(() => parseUblkAdd(['--image-opts', 'driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s0'])).toThrow("No secret with id 's0'");
  });

  it.each([[['--depth', '0', 'x']], [['--depth', '4097', 'x']], [['--queues', 'two', 'x']], [['-f', 'vmdk', 'x']], [['--discard=maybe', 'x']], [['a', 'b']], [[]], [['--bogus', 'x']]])(
    'refuses %j with a usage error',
    (args) => {
      let err: unknown;
      try {
        parseUblkAdd(args);
      } catch (e) {
        err = e;
      }
      expect(isQcow2Error(err) && err.code).toBe('usage');
    },
  );

  it('O_DIRECT cache modes are unsupported, not misread', () => {
    expect(() => parseUblkAdd(['--cache=none', 'x'])).toThrow(/O_DIRECT/);
  });
});

describe('ublk device parameters', () => {
  it('a writable qcow2 image: 512/4096 blocks, cluster-sized io_opt and discard, volatile cache with FUA', () => {
    const p = deviceParams(fakeDevice({}), 512 * 1024, { ...DEFAULT_POLICY, discard: 'unmap' });
    expect(p.basic).toEqual({
      attrs: ATTR.VOLATILE_CACHE | ATTR.FUA,
      logicalBsShift: 9,
      physicalBsShift: 12,
      ioOptShift: 16,
      ioMinShift: 12,
      maxSectors: 1024,
      chunkSectors: 0,
      devSectors: 2097152n,
      virtBoundaryMask: 0n,
    });
    expect(p.discard).toEqual({ discardAlignment: 0, discardGranularity: 65536, maxDiscardSectors: UBLK_MAX_DISCARD_BYTES / 512, maxWriteZeroesSectors: UBLK_MAX_DISCARD_BYTES / 512, maxDiscardSegments: 1 });
  });

  it('discard=ignore announces no discard, but write zeroes', () => {
    const p = deviceParams(fakeDevice({}), 512 * 1024, { ...DEFAULT_POLICY, discard: 'ignore' });
    expect(p.discard?.maxDiscardSectors).toBe(0);
    expect(p.discard?.maxWriteZeroesSectors).toBeGreaterThan(0);
  });

  it('read-only: the READ_ONLY attribute and no discard parameters', () => {
    const p = deviceParams(fakeDevice({ readOnly: true }), 512 * 1024, DEFAULT_POLICY);
    expect(p.basic?.attrs).toBe(ATTR.VOLATILE_CACHE | ATTR.FUA | ATTR.READ_ONLY);
    expect(p.discard).toBeUndefined();
  });

  it('raw: 4 KiB granularity; small and huge clusters are clamped to 4 KiB..2 MiB', () => {
    expect(deviceParams(fakeDevice({ format: 'raw' }), 524288, { ...DEFAULT_POLICY, discard: 'unmap' }).discard?.discardGranularity).toBe(4096);
    expect(deviceParams(fakeDevice({ clusterSize: 512 }), 524288, DEFAULT_POLICY).basic?.ioOptShift).toBe(12);
    expect(deviceParams(fakeDevice({ clusterSize: 2 * 1024 * 1024 }), 524288, DEFAULT_POLICY).basic?.ioOptShift).toBe(21);
  });
});

describe.skipIf(existsSync('/dev/ublk-control'))('qcow2 ublk on a kernel without ublk', () => {
  it.each([['list'], ['del', '0'], ['add', 'x.qcow2']])('%s: one typed unsupported error', async (...args) => {
    const err = await ublk(args, { stdout: () => {}, stderr: () => {}, isTTY: false }).catch((e: unknown) => e);
    expect(isQcow2Error(err) && err.code).toBe('unsupported');
    expect((err as Error).message).toMatch(/^ublk: this kernel has no ublk driver/);
  });
});
