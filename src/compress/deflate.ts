/**
 * Compression type 0: raw deflate (RFC 1951, no zlib header or trailer), as QEMU writes it.
 *
 * Facts established against QEMU 7.2 (see test/interop/compress-qemu.test.ts):
 * - QEMU compresses with zlib `deflateInit2(level 6, Z_DEFLATED, windowBits -12, memLevel 9,
 *   Z_DEFAULT_STRATEGY)`: Debian's zlib 1.2.13 with those parameters reproduces QEMU's bytes
 *   exactly. Node bundles a different zlib (Chromium's), so our bytes differ (they are usually a
 *   little smaller) but use the same parameters, so the 4 KiB window is respected.
 * - QEMU decompresses with ONE `inflate(Z_FINISH)` call into a cluster-sized buffer and accepts the
 *   result when the buffer is full (Z_STREAM_END, or Z_BUF_ERROR because the input ran out). Since
 *   the whole cluster is one output buffer, back-references may reach anywhere into the cluster
 *   (QEMU reads streams written with a 32 KiB window too). Bytes after the end of the stream (the
 *   rest of the last sector, often the next compressed cluster) are never looked at.
 */
import zlib from 'node:zlib';

/** QEMU's deflate parameters (block/qcow2-threads.c). */
const DEFLATE_OPTIONS = {
  level: 6,
  windowBits: 12,
  memLevel: 9,
  strategy: zlib.constants.Z_DEFAULT_STRATEGY,
} as const;

export type InflateResult =
  | { ok: true; data: Uint8Array }
  | { ok: false; reason: string; cause?: unknown };

/**
 * Inflates at most `clusterSize` bytes. The first call into zlib gets the whole cluster as its
 * output buffer (chunkSize = clusterSize), exactly like QEMU's single inflate call; Node stops with
 * ERR_BUFFER_TOO_LARGE as soon as a second call would produce more, so at most one extra chunk is
 * ever produced. Z_SYNC_FLUSH (not Z_FINISH) makes input that ends early come back short instead of
 * throwing "unexpected end of file", and trailing bytes after the end of the stream are ignored.
 */
export function inflateCluster(input: Uint8Array, clusterSize: number): InflateResult {
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(input, {
      windowBits: 15,
      chunkSize: clusterSize,
      maxOutputLength: clusterSize,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      return { ok: false, reason: `deflate stream continues past the end of the ${clusterSize}-byte cluster`, cause: err };
    }
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `invalid deflate stream (${message})`, cause: err };
  }
  if (out.byteLength !== clusterSize) {
    return {
      ok: false,
      reason: `deflate data ends after ${out.byteLength} of ${clusterSize} bytes (truncated or damaged stream)`,
    };
  }
  return { ok: true, data: ownBytes(out) };
}

/** Raw deflate of one cluster with QEMU's parameters; the caller decides whether it is worth it. */
export function deflateCluster(data: Uint8Array): Uint8Array {
  // One output chunk in the common case (deflate can exceed its input by a few bytes per block).
  // The result is usually much shorter than that chunk: copy it so the chunk can be freed.
  return copy(zlib.deflateRawSync(data, { ...DEFLATE_OPTIONS, chunkSize: data.byteLength + 1024 }));
}

/**
 * A plain Uint8Array over exactly these bytes. Node's Buffers may be views into a larger pooled
 * ArrayBuffer, and Buffer#slice does not copy; callers get an ordinary Uint8Array of their own.
 */
function ownBytes(b: Buffer): Uint8Array {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.byteLength) {
    return new Uint8Array(b.buffer, 0, b.byteLength);
  }
  return copy(b);
}

function copy(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.byteLength);
  out.set(b);
  return out;
}
