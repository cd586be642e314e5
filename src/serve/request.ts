/**
 * The serving core: one guest request, from any server (NBD now, ublk next), run against a
 * BlockDevice with the right semantics. No protocol lives here: a server decodes its wire format
 * into a {@link ServeRequest}, calls {@link execute}, and encodes the {@link ServeResult}.
 *
 * execute() never throws. Every failure is an errno (errnoOf in src/errors.ts), and errors the
 * engine raised are reported once each on the error log: a typed engine error fails its request,
 * never the server.
 *
 * | request      | device call                                                    | refused with                          |
 * | ------------ | -------------------------------------------------------------- | ------------------------------------- |
 * | read         | readInto                                                       | EINVAL past the end or over the limit |
 * | write        | write (fua); all-zero data as write-zeroes with detectZeroes   | EPERM read-only; ENOSPC past the end; EINVAL over the limit |
 * | write-zeroes | writeZeroes: unmap unless noHole (and discard=unmap), fast, fua | EPERM; ENOSPC past the end; ENOTSUP fast but cannot |
 * | trim         | discard (fua) with discard=unmap; nothing with discard=ignore  | EPERM; EINVAL past the end            |
 * | cache        | nothing: the range is checked (a hint; our reads are page-cache reads anyway) | EINVAL past the end or over the limit |
 * | flush        | flush                                                          |                                       |
 * | block-status | blockStatus (at most BLOCK_STATUS_CHUNK_BYTES of it)           | EINVAL past the end or empty          |
 *
 * The errors for requests past the end are the NBD spec's (ENOSPC for writes, EINVAL otherwise),
 * which are also what qemu's NBD server answers.
 */
import type { BlockDevice, StatusExtent } from '../engine/types.js';
import { type Errno, errnoOf, errnoText } from '../errors.js';
import { isZero } from '../format/bytes.js';
import { BLOCK_STATUS_CHUNK_BYTES, MAX_SERVE_REQUEST_BYTES } from '../limits.js';
import type { ErrorLog } from './log.js';

export type ServeKind = 'read' | 'write' | 'flush' | 'trim' | 'write-zeroes' | 'cache' | 'block-status';

export interface RequestFlags {
  /** Force unit access: durable before the reply. */
  fua?: boolean;
  /** write-zeroes: keep the range allocated (NBD_CMD_FLAG_NO_HOLE). */
  noHole?: boolean;
  /** write-zeroes: fast or fail with ENOTSUP before changing anything (NBD_CMD_FLAG_FAST_ZERO). */
  fastZero?: boolean;
}

export interface ServeRequest {
  kind: ServeKind;
  offset: number;
  length: number;
  flags?: RequestFlags;
  /** The data of a write (its length is `length`). */
  data?: Uint8Array;
}

export type ServeResult =
  | { ok: true; /** read */ data?: Uint8Array; /** block-status */ extents?: StatusExtent[] }
  | { ok: false; errno: Errno; /** Safe to show a client: no paths, no image offsets. */ message: string };

/** How a server was told to run requests (the CLI's options). */
export interface ServePolicy {
  /** 'ignore' (qemu-nbd's default): trims succeed and do nothing, zero writes keep their space. */
  discard: 'ignore' | 'unmap';
  /** Every write is a FUA write (--cache=writethrough). */
  writethrough: boolean;
  /**
   * Writes whose data is all zeros become zero writes (QEMU's detect-zeroes): 'on' keeps the
   * space allocated, 'unmap' lets it be freed as a trim would (needs discard 'unmap'). Default 'off'.
   */
  detectZeroes?: 'off' | 'on' | 'unmap';
}

export interface ServeContext {
  policy: ServePolicy;
  /** Engine errors, each distinct one reported once. */
  errors: ErrorLog;
}

export const DEFAULT_POLICY: ServePolicy = { discard: 'ignore', writethrough: false, detectZeroes: 'off' };

function refuse(errno: Errno, message: string): ServeResult {
  return { ok: false, errno, message };
}

const OK: ServeResult = { ok: true };

/** Runs one request; never throws. */
export async function execute(device: BlockDevice, req: ServeRequest, ctx: ServeContext): Promise<ServeResult> {
  const { offset, length } = req;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    return refuse('EINVAL', `invalid ${req.kind} range`);
  }
  const size = device.virtualSize;
  const beyond = offset > size || length > size - offset;
  const flags = req.flags ?? {};
  try {
    switch (req.kind) {
      case 'flush':
        await device.flush();
        return OK;
      case 'read': {
        if (length > MAX_SERVE_REQUEST_BYTES) return refuse('EINVAL', `read of ${length} bytes is larger than the largest request (${MAX_SERVE_REQUEST_BYTES})`);
        if (beyond) return refuse('EINVAL', 'read beyond the end of the export');
        // Not zeroed: readInto writes every byte (the campaign checks it with poisoned buffers).
        const data = Buffer.allocUnsafe(length);
        if (length > 0) await device.readInto(offset, data);
        return { ok: true, data };
      }
      case 'cache':
        if (length > MAX_SERVE_REQUEST_BYTES) return refuse('EINVAL', `cache of ${length} bytes is larger than the largest request (${MAX_SERVE_REQUEST_BYTES})`);
        if (beyond) return refuse('EINVAL', 'cache beyond the end of the export');
        return OK;
      case 'write': {
        if (device.readOnly) return refuse('EPERM', 'the export is read-only');
        if (length > MAX_SERVE_REQUEST_BYTES) return refuse('EINVAL', `write of ${length} bytes is larger than the largest request (${MAX_SERVE_REQUEST_BYTES})`);
        if (beyond) return refuse('ENOSPC', 'write beyond the end of the export');
        const data = req.data ?? new Uint8Array(0);
        if (data.byteLength !== length) return refuse('EINVAL', 'write data does not match its length');
        if (length === 0) return OK;
        if ((ctx.policy.detectZeroes ?? 'off') !== 'off' && isZero(data)) {
          const unmap = ctx.policy.detectZeroes === 'unmap' && ctx.policy.discard === 'unmap' && device.capabilities.zeroUnmap;
          await device.writeZeroes(offset, length, { unmap, fast: false, fua: fua(flags, ctx) });
        } else {
          await device.write(offset, data, { fua: fua(flags, ctx) });
        }
        return OK;
      }
      case 'write-zeroes': {
        if (device.readOnly) return refuse('EPERM', 'the export is read-only');
        if (beyond) return refuse('ENOSPC', 'write zeroes beyond the end of the export');
        if (length === 0) return OK;
        const unmap = !flags.noHole && ctx.policy.discard === 'unmap' && device.capabilities.zeroUnmap;
        if (flags.fastZero && !device.capabilities.fastZero) return refuse('ENOTSUP', 'this export cannot zero quickly');
        await device.writeZeroes(offset, length, { unmap, fast: flags.fastZero === true, fua: fua(flags, ctx) });
        return OK;
      }
      case 'trim':
        if (device.readOnly) return refuse('EPERM', 'the export is read-only');
        if (beyond) return refuse('EINVAL', 'trim beyond the end of the export');
        // A trim is a hint (the NBD spec: the server MAY discard); with discard=ignore it is dropped.
        if (length === 0 || ctx.policy.discard === 'ignore' || !device.capabilities.discard) return OK;
        await device.discard(offset, length, { fua: fua(flags, ctx) });
        return OK;
      case 'block-status': {
        if (beyond) return refuse('EINVAL', 'block status beyond the end of the export');
        if (length === 0) return refuse('EINVAL', 'block status of an empty range');
        const extents = await device.blockStatus(offset, Math.min(length, BLOCK_STATUS_CHUNK_BYTES));
        return { ok: true, extents };
      }
    }
  } catch (err) {
    const errno = errnoOf(err);
    // A fast zero write that cannot be fast is an answer, not a failure of the engine.
    if (!(req.kind === 'write-zeroes' && flags.fastZero && errno === 'ENOTSUP')) {
      ctx.errors.report(err, `${req.kind} of ${length} bytes at ${offset}`);
    }
    return refuse(errno, errnoText(errno));
  }
}

function fua(flags: RequestFlags, ctx: ServeContext): boolean {
  return flags.fua === true || ctx.policy.writethrough;
}

/** Whether a request changes the device (refused on a read-only one). */
export function isWrite(kind: ServeKind): boolean {
  return kind === 'write' || kind === 'write-zeroes' || kind === 'trim';
}
