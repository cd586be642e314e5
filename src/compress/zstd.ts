/**
 * Compression type 1: zstd, through zstd-napi's thin binding over libzstd's streaming API.
 *
 * Facts established against QEMU 7.2 (see test/interop/compress-qemu.test.ts):
 * - QEMU compresses each cluster as ONE frame with a fresh ZSTD_CCtx and default parameters:
 *   level 3 (ZSTD_CLEVEL_DEFAULT), content size in the frame header, no checksum. `zstd -3
 *   --no-check` of Debian's libzstd 1.5.4 reproduces QEMU's bytes exactly; zstd-napi bundles
 *   libzstd 1.5.7, whose level 3 output differs on some clusters by a few bytes either way.
 * - QEMU decompresses with ZSTD_decompressStream in a loop until the cluster is full (several
 *   frames, skippable frames and checksums are fine), fails when a call makes no progress (the
 *   input ended early), and fails when the frame being decoded has not ended once the cluster is
 *   full (it would produce more than a cluster). Bytes after that are never looked at.
 *
 * The binding is loaded on first use, so images without zstd clusters never need the native
 * module. Contexts are created once per thread and reset before every use (decoding damaged input
 * leaves a context mid-frame).
 */
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { unsupported } from '../errors.js';

/** QEMU's level: a fresh ZSTD_CCtx compresses at ZSTD_CLEVEL_DEFAULT. */
export const ZSTD_LEVEL = 3;

type Binding = typeof ZstdBinding;

let binding: Binding | undefined;
let cctx: ZstdBinding.CCtx | undefined;
let dctx: ZstdBinding.DCtx | undefined;
let scratch: Uint8Array | undefined;

function load(): Binding {
  if (binding) return binding;
  try {
    binding = createRequire(import.meta.url)('zstd-napi/binding') as Binding;
  } catch (err) {
    throw unsupported('zstd compression needs the native module zstd-napi, which failed to load (reinstall with npm ci)', {
      cause: err,
    });
  }
  return binding;
}

function compressionContext(): { z: Binding; c: ZstdBinding.CCtx } {
  const z = load();
  if (!cctx) {
    cctx = new z.CCtx();
    cctx.setParameter(z.CParameter.compressionLevel, ZSTD_LEVEL);
    cctx.setParameter(z.CParameter.contentSizeFlag, 1);
    cctx.setParameter(z.CParameter.checksumFlag, 0);
  }
  cctx.reset(z.ResetDirective.sessionOnly);
  return { z, c: cctx };
}

function decompressionContext(): ZstdBinding.DCtx {
  const z = load();
  dctx ??= new z.DCtx();
  dctx.reset(z.ResetDirective.sessionOnly);
  return dctx;
}

/** One zstd frame holding the cluster, as QEMU writes it (ZSTD_compress2 == compressStream2(e_end)). */
export function zstdCompressCluster(data: Uint8Array): Uint8Array {
  const { z, c } = compressionContext();
  const bound = z.compressBound(data.byteLength);
  if (!scratch || scratch.byteLength < bound) scratch = new Uint8Array(bound);
  const n = c.compress2(scratch, data);
  return scratch.slice(0, n);
}

export type ZstdResult = { ok: true; data: Uint8Array } | { ok: false; reason: string; cause?: unknown };

/** Decodes frames from `input` until exactly `clusterSize` bytes have been produced. */
export function zstdDecompressCluster(input: Uint8Array, clusterSize: number): ZstdResult {
  const d = decompressionContext();
  const out = new Uint8Array(clusterSize);
  let inPos = 0;
  let outPos = 0;
  let hint = 0;
  try {
    while (outPos < clusterSize) {
      const [ret, produced, consumed] = d.decompressStream(out.subarray(outPos), input.subarray(inPos));
      hint = ret;
      outPos += produced;
      inPos += consumed;
      if (produced === 0 && consumed === 0) {
        return {
          ok: false,
          reason: `zstd data ends after ${outPos} of ${clusterSize} bytes (truncated or damaged stream)`,
        };
      }
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `invalid zstd data after ${outPos} of ${clusterSize} bytes (${message})`, cause: err };
  }
  if (hint !== 0) {
    return { ok: false, reason: `zstd frame continues past the end of the ${clusterSize}-byte cluster` };
  }
  return { ok: true, data: out };
}
