/**
 * One L2 table of the check (QEMU's check_refcounts_l2): counts a reference for every host cluster
 * the table maps, reports malformed entries, and tallies allocation figures for the active table.
 * With errors to fix, a preallocated zero cluster at an unaligned offset becomes a plain zero entry.
 */
import { hex, ioError } from '../errors.js';
import { view } from '../format/bytes.js';
import type { CheckContext } from './context.js';
import { entryHex } from './entry-hex.js';
import type { InMemoryRefcounts } from './imrt.js';
import { classifyL2Entry, compressedRange } from './l2-entry.js';
import { overlapsMetadata } from './overlap.js';
import type { CheckCounts } from './result.js';

export interface WalkFlags {
  /** Count allocated / fragmented / compressed clusters (the active L1 tree only). */
  fragInfo: boolean;
  active: boolean;
}

export async function checkL2Table(
  ctx: CheckContext,
  res: CheckCounts,
  imrt: InMemoryRefcounts,
  l2Offset: number,
  flags: WalkFlags,
): Promise<void> {
  const C = ctx.clusterSize;
  const bytes = await ctx.read(l2Offset, C);
  const dv = view(bytes);
  let nextContiguous = 0;
  for (let i = 0; i < ctx.l2Entries; i++) {
    const e = classifyL2Entry(dv, i * ctx.l2EntryBytes, ctx.extendedL2, ctx.dataFile);
    const hex = () => entryHex(bytes, i * ctx.l2EntryBytes);
    if (e.type !== 'compressed' && e.reservedBits) {
      ctx.log?.(`ERROR found l2 entry with reserved bits set: ${hex()}`);
      res.corruptions++;
    }
    switch (e.type) {
      case 'compressed': {
        const range = compressedRange(e.raw, ctx.clusterBits);
        if (e.raw.copied) {
          ctx.log?.(`ERROR: coffset=0x${range.offset.toString(16)}: copied flag must never be set for compressed clusters`);
          res.corruptions++;
        }
        if (ctx.dataFile) {
          ctx.log?.(`ERROR compressed cluster ${i} with data file, entry=0x${hex()}`);
          res.corruptions++;
          break;
        }
        if (e.hasBitmap) {
          ctx.log?.(`ERROR compressed cluster ${i} with non-zero subcluster allocation bitmap, entry=0x${hex()}`);
          res.corruptions++;
          break;
        }
        imrt.add(res, ctx.log, range.offset, range.length, ctx.fileSize);
        if (flags.fragInfo) {
          res.allocatedClusters++;
          res.compressedClusters++;
          // Compressed clusters share sectors, so every one counts as fragmented.
          res.fragmentedClusters++;
        }
        break;
      }
      case 'normal':
      case 'zero-alloc': {
        const offset = e.hostOffset;
        if ((e.raw.allocBitmap & e.raw.zeroBitmap) !== 0) {
          res.corruptions++;
          ctx.log?.(`ERROR offset=${offset.toString(16)}: Allocated cluster has corrupted subcluster allocation bitmap`);
        }
        if (offset % C !== 0) {
          res.corruptions++;
          const containsData = ctx.extendedL2 ? e.raw.allocBitmap !== 0 : e.type === 'normal';
          if (!containsData) {
            ctx.log?.(`${ctx.fix.errors ? 'Repairing' : 'ERROR'} offset=${offset.toString(16)}: Preallocated cluster is not properly aligned; L2 entry corrupted.`);
            if (ctx.fix.errors && (await dropUnalignedZero(ctx, res, bytes, l2Offset, i, flags.active))) continue;
          } else {
            ctx.log?.(`ERROR offset=${offset.toString(16)}: Data cluster is not properly aligned; L2 entry corrupted.`);
          }
        }
        if (flags.fragInfo) {
          res.allocatedClusters++;
          if (nextContiguous !== 0 && offset !== nextContiguous) res.fragmentedClusters++;
          nextContiguous = offset + C;
        }
        if (!ctx.dataFile) imrt.add(res, ctx.log, offset, C, ctx.fileSize);
        break;
      }
      case 'zero-plain':
        break;
      case 'unallocated':
        if (e.raw.allocBitmap !== 0) {
          res.corruptions++;
          ctx.log?.('ERROR: Unallocated cluster has non-zero subcluster allocation map');
        }
        break;
    }
  }
}

/** Rewrites entry `i` as a plain zero cluster (no subclusters: all-unallocated). */
async function dropUnalignedZero(
  ctx: CheckContext,
  res: CheckCounts,
  table: Uint8Array,
  l2Offset: number,
  i: number,
  active: boolean,
): Promise<boolean> {
  const at = i * ctx.l2EntryBytes;
  const entry = table.subarray(at, at + ctx.l2EntryBytes);
  entry.fill(0);
  if (!ctx.extendedL2) entry[7] = 1; // the zero flag, bit 0
  const where = l2Offset + at;
  const clash = overlapsMetadata(ctx, where, ctx.l2EntryBytes, active ? 'active-l2' : 'inactive-l2');
  if (clash) {
    // As QEMU: the check stops there, failed (the metadata is too broken to repair entry by entry).
    ctx.log?.('ERROR: Overlap check failed');
    res.checkErrors++;
    throw ioError(`Input/output error (the repair of the L2 entry at ${hex(where)} would overwrite the ${clash})`, { offset: where });
  }
  await ctx.file.write(where, entry.slice(), 'l2');
  res.corruptions--;
  res.corruptionsFixed++;
  return true;
}

