/**
 * The worker pool gives the same answers as the calling thread: the same bytes for good clusters,
 * the same typed error (code, offset) for damaged ones, whatever the batch.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { compressClusters, decompressItems, inlineCodec } from '../../src/compress/codec.js';
import { compressCluster, type CompressionType } from '../../src/compress/index.js';
import { WorkerPool } from '../../src/compress/pool.js';
import { Qcow2Error } from '../../src/errors.js';

const pool = new WorkerPool(2);
afterAll(() => pool.close());

const C = 4096;

function textCluster(seed: number): Uint8Array {
  const words = ['alpha ', 'beta ', 'gamma ', 'delta ', 'refcount ', 'cluster '];
  const out = new Uint8Array(C);
  let s = seed;
  for (let i = 0; i < C; ) for (const ch of words[(s = (s * 7 + 3) % 997) % words.length]!) if (i < C) out[i++] = ch.charCodeAt(0);
  return out;
}

/** n clusters packed back to back at hostBase, as QEMU lays them out. */
function packed(type: CompressionType, n: number, hostBase: number) {
  const clusters = Array.from({ length: n }, (_, i) => textCluster(i + 1));
  const streams = clusters.map((c) => compressCluster(type, c)!);
  const input = new Uint8Array(streams.reduce((a, s) => a + s.byteLength, 0));
  const items = [];
  let at = 0;
  for (const s of streams) {
    input.set(s, at);
    items.push({ at, length: s.byteLength, hostOffset: hostBase + at });
    at += s.byteLength;
  }
  return { clusters, input, items };
}

describe('compression worker pool', () => {
  for (const type of [0, 1] as const) {
    it(`decompresses a packed batch as the calling thread does (${type === 0 ? 'deflate' : 'zstd'})`, async () => {
      const { clusters, input, items } = packed(type, 9, 0x30000);
      const viaPool = await decompressItems(pool, type, C, input.slice(), items);
      const inline = await decompressItems(inlineCodec, type, C, input.slice(), items);
      expect(viaPool).toEqual(inline);
      clusters.forEach((c, i) => expect(viaPool.subarray(i * C, (i + 1) * C)).toEqual(c));
    });

    it(`compresses clusters to the bytes compressCluster gives (${type === 0 ? 'deflate' : 'zstd'})`, async () => {
      const data = new Uint8Array(7 * C);
      for (let i = 0; i < 7; i++) data.set(i === 3 ? crypto.getRandomValues(new Uint8Array(C)) : textCluster(i + 10), i * C);
      const before = data.slice();
      const got = await compressClusters(pool, type, C, data);
      expect(data).toEqual(before); // the caller's buffer is neither detached nor changed
      expect(got).toHaveLength(7);
      for (let i = 0; i < 7; i++) expect(got[i]).toEqual(compressCluster(type, data.subarray(i * C, (i + 1) * C)));
      expect(got[3]).toBeUndefined();
    });

    it(`reports a damaged cluster as corrupt at its host offset (${type === 0 ? 'deflate' : 'zstd'})`, async () => {
      const { input, items } = packed(type, 4, 0x50000);
      const cut = items.map((it, i) => (i === 2 ? { ...it, length: 20 } : it));
      const inline = await decompressItems(inlineCodec, type, C, input.slice(), cut).catch((e: unknown) => e);
      const viaPool = await decompressItems(pool, type, C, input.slice(), cut).catch((e: unknown) => e);
      expect(viaPool).toBeInstanceOf(Qcow2Error);
      expect(viaPool).toMatchObject({ code: 'corrupt', offset: items[2]!.hostOffset, field: 'compressed cluster' });
      expect((viaPool as Error).message).toBe((inline as Error).message);
    });
  }

  it('keeps serving after a failure and many batches at once', async () => {
    const { clusters, input, items } = packed(0, 3, 0);
    const runs = await Promise.all(Array.from({ length: 40 }, () => decompressItems(pool, 0, C, input.slice(), items)));
    for (const r of runs) expect(r.subarray(C, 2 * C)).toEqual(clusters[1]);
  });
});
