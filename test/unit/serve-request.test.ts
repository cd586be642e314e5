/**
 * The serving core (src/serve/request.ts) on a recording fake device: which contract call each
 * request makes and with which options, the refusals (read-only, bounds, the largest request,
 * fast zero), and engine errors: an errno for the client, one log line per distinct error, never a
 * throw. Also the graceful shutdown order (src/serve/shutdown.ts).
 */
import { describe, expect, it } from 'vitest';
import type { BlockDevice, DeviceCapabilities, StatusExtent } from '../../src/engine/types.js';
import { corrupt, ioError } from '../../src/errors.js';
import { MAX_SERVE_REQUEST_BYTES } from '../../src/limits.js';
import { ErrorLog } from '../../src/serve/log.js';
import { DEFAULT_POLICY, execute, type ServeContext, type ServePolicy } from '../../src/serve/request.js';
import { InFlight, shutdownGracefully } from '../../src/serve/shutdown.js';

interface Call {
  op: string;
  args: unknown[];
}

function fakeDevice(opts: { readOnly?: boolean; caps?: Partial<DeviceCapabilities>; fail?: unknown; size?: number } = {}): BlockDevice & { calls: Call[] } {
  const calls: Call[] = [];
  const act = async (op: string, ...args: unknown[]) => {
    calls.push({ op, args });
    if (opts.fail !== undefined) throw opts.fail;
  };
  const size = opts.size ?? 1 << 20;
  return {
    calls,
    format: 'raw',
    virtualSize: size,
    readOnly: opts.readOnly ?? false,
    capabilities: { discard: true, zeroUnmap: true, fastZero: true, compressedWrites: false, snapshots: false, ...opts.caps },
    backing: undefined,
    read: async (o: number, l: number) => {
      await act('read', o, l);
      return new Uint8Array(l);
    },
    readInto: async (o: number, t: Uint8Array) => {
      await act('readInto', o, t.byteLength);
      t.fill(7);
    },
    write: (o: number, d: Uint8Array, w?: object) => act('write', o, d.byteLength, w),
    writeZeroes: (o: number, l: number, w?: object) => act('writeZeroes', o, l, w),
    discard: (o: number, l: number, w?: object) => act('discard', o, l, w),
    flush: () => act('flush'),
    resize: (n: number) => act('resize', n),
    mapExtents: async () => [],
    blockStatus: async (o: number, l: number): Promise<StatusExtent[]> => {
      await act('blockStatus', o, l);
      return [{ start: o, length: l, zero: true, data: false, depth: 0 }];
    },
    close: () => act('close'),
  };
}

function context(policy: Partial<ServePolicy> = {}): ServeContext & { lines: string[] } {
  const lines: string[] = [];
  return { policy: { ...DEFAULT_POLICY, ...policy }, errors: new ErrorLog((l) => lines.push(l)), lines };
}

describe('execute', () => {
  it('read: readInto the whole range; data returned', async () => {
    const dev = fakeDevice();
    const r = await execute(dev, { kind: 'read', offset: 512, length: 1024 }, context());
    expect(r.ok && r.data?.byteLength).toBe(1024);
    expect(r.ok && r.data?.[0]).toBe(7);
    expect(dev.calls).toEqual([{ op: 'readInto', args: [512, 1024] }]);
  });

  it('write: FUA passed on; writethrough makes every write FUA', async () => {
    const dev = fakeDevice();
    await execute(dev, { kind: 'write', offset: 0, length: 4, data: new Uint8Array(4), flags: { fua: true } }, context());
    await execute(dev, { kind: 'write', offset: 0, length: 4, data: new Uint8Array(4) }, context());
    await execute(dev, { kind: 'write', offset: 0, length: 4, data: new Uint8Array(4) }, context({ writethrough: true }));
    expect(dev.calls.map((c) => c.args[2])).toEqual([{ fua: true }, { fua: false }, { fua: true }]);
  });

  it('write-zeroes: unmap unless NO_HOLE (and only with discard=unmap); FAST_ZERO is fast', async () => {
    const dev = fakeDevice();
    const unmap = context({ discard: 'unmap' });
    await execute(dev, { kind: 'write-zeroes', offset: 0, length: 4096 }, unmap);
    await execute(dev, { kind: 'write-zeroes', offset: 0, length: 4096, flags: { noHole: true } }, unmap);
    await execute(dev, { kind: 'write-zeroes', offset: 0, length: 4096, flags: { fastZero: true, fua: true } }, context());
    expect(dev.calls.map((c) => c.args[2])).toEqual([
      { unmap: true, fast: false, fua: false },
      { unmap: false, fast: false, fua: false },
      { unmap: false, fast: true, fua: true },
    ]);
  });

  it('write-zeroes with FAST_ZERO on a device that cannot: ENOTSUP, nothing called, nothing logged', async () => {
    const dev = fakeDevice({ caps: { fastZero: false } });
    const ctx = context();
    const r = await execute(dev, { kind: 'write-zeroes', offset: 0, length: 4096, flags: { fastZero: true } }, ctx);
    expect(r).toMatchObject({ ok: false, errno: 'ENOTSUP' });
    expect(dev.calls).toEqual([]);
    const refusing = fakeDevice({ fail: new (await import('../../src/errors.js')).Qcow2Error('unsupported', 'not fast here') });
    const r2 = await execute(refusing, { kind: 'write-zeroes', offset: 0, length: 4096, flags: { fastZero: true } }, ctx);
    expect(r2).toMatchObject({ ok: false, errno: 'ENOTSUP' });
    expect(ctx.lines).toEqual([]);
  });

  it('trim: discard with discard=unmap; a no-op with discard=ignore', async () => {
    const dev = fakeDevice();
    expect((await execute(dev, { kind: 'trim', offset: 0, length: 4096 }, context())).ok).toBe(true);
    expect(dev.calls).toEqual([]);
    await execute(dev, { kind: 'trim', offset: 0, length: 4096, flags: { fua: true } }, context({ discard: 'unmap' }));
    expect(dev.calls).toEqual([{ op: 'discard', args: [0, 4096, { fua: true }] }]);
  });

  it('cache checks the range and does nothing; flush flushes; block-status asks the device', async () => {
    const dev = fakeDevice();
    expect((await execute(dev, { kind: 'cache', offset: 0, length: 4096 }, context())).ok).toBe(true);
    expect((await execute(dev, { kind: 'flush', offset: 0, length: 0 }, context())).ok).toBe(true);
    const s = await execute(dev, { kind: 'block-status', offset: 4096, length: 8192 }, context());
    expect(s.ok && s.extents).toEqual([{ start: 4096, length: 8192, zero: true, data: false, depth: 0 }]);
    expect(dev.calls.map((c) => c.op)).toEqual(['flush', 'blockStatus']);
  });

  it('read-only: writes, zero writes and trims are EPERM without touching the device', async () => {
    const dev = fakeDevice({ readOnly: true });
    for (const kind of ['write', 'write-zeroes', 'trim'] as const) {
      const r = await execute(dev, { kind, offset: 0, length: 4, data: new Uint8Array(4) }, context());
      expect(r).toMatchObject({ ok: false, errno: 'EPERM' });
    }
    expect(dev.calls).toEqual([]);
  });

  it('bounds: past the end is ENOSPC for writes, EINVAL otherwise; over 32 MiB is EINVAL', async () => {
    const dev = fakeDevice({ size: 4096 });
    const ctx = context();
    expect(await execute(dev, { kind: 'write', offset: 4000, length: 200, data: new Uint8Array(200) }, ctx)).toMatchObject({ errno: 'ENOSPC' });
    expect(await execute(dev, { kind: 'write-zeroes', offset: 4096, length: 1 }, ctx)).toMatchObject({ errno: 'ENOSPC' });
    expect(await execute(dev, { kind: 'read', offset: 4095, length: 2 }, ctx)).toMatchObject({ errno: 'EINVAL' });
    expect(await execute(dev, { kind: 'trim', offset: 8192, length: 1 }, ctx)).toMatchObject({ errno: 'EINVAL' });
    expect(await execute(dev, { kind: 'block-status', offset: 0, length: 0 }, ctx)).toMatchObject({ errno: 'EINVAL' });
    expect(await execute(dev, { kind: 'read', offset: -1, length: 2 }, ctx)).toMatchObject({ errno: 'EINVAL' });
    const big = fakeDevice({ size: 2 * MAX_SERVE_REQUEST_BYTES });
    expect(await execute(big, { kind: 'read', offset: 0, length: MAX_SERVE_REQUEST_BYTES + 1 }, ctx)).toMatchObject({ errno: 'EINVAL' });
    expect(dev.calls).toEqual([]);
    expect(big.calls).toEqual([]);
  });

  it('engine errors: an errno, never a throw, each distinct error logged once', async () => {
    const ctx = context();
    const bad = fakeDevice({ fail: corrupt('L2 entry points into metadata', { offset: 0x30000, field: 'l2_entry' }) });
    for (let i = 0; i < 5; i++) expect(await execute(bad, { kind: 'read', offset: 0, length: 512 }, ctx)).toMatchObject({ ok: false, errno: 'EIO' });
    const full = fakeDevice({ fail: ioError('write failed', { cause: Object.assign(new Error('no space'), { code: 'ENOSPC' }) }) });
    expect(await execute(full, { kind: 'write', offset: 0, length: 1, data: new Uint8Array(1) }, ctx)).toMatchObject({ ok: false, errno: 'ENOSPC' });
    const buggy = fakeDevice({ fail: new TypeError('oops') });
    expect(await execute(buggy, { kind: 'flush', offset: 0, length: 0 }, ctx)).toMatchObject({ ok: false, errno: 'EIO' });
    expect(ctx.lines).toHaveLength(3);
    expect(ctx.lines[0]).toContain('corrupt: l2_entry at 0x30000: L2 entry points into metadata');
  });
});

describe('shutdown', () => {
  it('InFlight drains when the last tracked work settles, whatever its outcome', async () => {
    const f = new InFlight();
    let done = false;
    let fail!: (e: Error) => void;
    void f.track(new Promise((_, reject) => (fail = reject))).catch(() => {});
    const drained = f.drained().then(() => (done = true));
    expect(f.size).toBe(1);
    await Promise.resolve();
    expect(done).toBe(false);
    fail(new Error('x'));
    await drained;
    expect(f.size).toBe(0);
  });

  it('stops accepting, drains, flushes, closes: in that order, each step even after a failure', async () => {
    const order: string[] = [];
    const dev = fakeDevice();
    const server = {
      stopAccepting: () => void order.push('stop'),
      drain: async () => {
        order.push('drain');
        throw new Error('drain failed');
      },
    };
    await expect(shutdownGracefully(server, dev)).rejects.toThrow('drain failed');
    expect([...order, ...dev.calls.map((c) => c.op)]).toEqual(['stop', 'drain', 'flush', 'close']);
  });
});
