/**
 * Counts every reference the image makes to its own clusters (QEMU's calculate_refcounts): the
 * header cluster, the active L1 tree, each snapshot's L1 tree, the snapshot table, the refcount
 * table, the LUKS header, the bitmaps, and finally the refcount blocks (checked on the way).
 */
import { MAX_L1_BYTES } from '../limits.js';
import { countBitmaps } from './bitmaps.js';
import { type CountingPass, cryptoHeaderRange, exactTableOffset } from './context.js';
import { checkL1Tree } from './l1-check.js';
import { checkRefblocks } from './refblocks.js';

export const calculateRefcounts: CountingPass = async (ctx, res, imrt, state) => {
  const C = ctx.clusterSize;
  const { layout, snapshots } = ctx.meta;
  imrt.add(res, ctx.log, 0, C, ctx.fileSize);
  await checkL1Tree(ctx, res, imrt, exactTableOffset(layout.l1TableOffset, ctx.meta.header.l1TableOffset), layout.l1Size, { fragInfo: true, active: true });

  if (ctx.dataFile && snapshots.length > 0) {
    ctx.log?.(`ERROR ${snapshots.length} snapshots in image with data file`);
    res.corruptions++;
  }
  for (const sn of snapshots) {
    const l1Offset = sn.l1TableOffset;
    if (l1Offset % BigInt(C) !== 0n) {
      ctx.log?.(`ERROR snapshot ${sn.id} (${sn.name}) l1_offset=0x${l1Offset.toString(16)}: L1 table is not cluster aligned; snapshot table entry corrupted`);
      res.corruptions++;
      continue;
    }
    if (sn.l1Size > MAX_L1_BYTES / 8) {
      ctx.log?.(`ERROR snapshot ${sn.id} (${sn.name}) l1_size=0x${sn.l1Size.toString(16)}: L1 table is too large; snapshot table entry corrupted`);
      res.corruptions++;
      continue;
    }
    await checkL1Tree(ctx, res, imrt, l1Offset > BigInt(Number.MAX_SAFE_INTEGER) ? l1Offset : Number(l1Offset), sn.l1Size, { fragInfo: false, active: false });
  }
  imrt.add(res, ctx.log, exactTableOffset(layout.snapshotsOffset, ctx.meta.header.snapshotsOffset), ctx.meta.snapshotTableSize, ctx.fileSize);
  imrt.add(res, ctx.log, exactTableOffset(ctx.refcountTableOffset, ctx.meta.header.refcountTableOffset), ctx.refcountTableClusters * C, ctx.fileSize);
  const crypto = cryptoHeaderRange(ctx.meta);
  if (crypto) imrt.add(res, ctx.log, crypto.offset, crypto.length, ctx.fileSize);
  await countBitmaps(ctx, res, imrt);
  await checkRefblocks(ctx, res, imrt, state);
};
