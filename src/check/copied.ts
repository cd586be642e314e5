/**
 * The COPIED flag (QEMU's check_oflag_copied): an active L1 entry or a standard L2 entry must have
 * it exactly when the cluster's stored refcount is 1 (with an external data file every data
 * cluster counts as refcount 1). Repaired with `-r all`, or with `-r leaks` when the refcounts are
 * otherwise sound, by setting or clearing the flag.
 */
import { hex, ioError } from '../errors.js';
import { view } from '../format/bytes.js';
import { decodeL1Entry } from '../format/l1.js';
import type { CheckContext } from './context.js';
import { entryHex } from './entry-hex.js';
import { classifyL2Entry } from './l2-entry.js';
import { overlapsMetadata } from './overlap.js';
import type { CheckCounts } from './result.js';

export async function checkCopied(ctx: CheckContext, res: CheckCounts): Promise<void> {
  const repair = ctx.fix.errors || (ctx.fix.leaks && res.checkErrors === 0 && res.corruptions === 0 && res.leaks === 0);
  const C = ctx.clusterSize;
  const l1 = view(ctx.l1);
  const l1Offset = ctx.meta.layout.l1TableOffset;
  for (let i = 0; i < ctx.meta.layout.l1Size; i++) {
    const e = decodeL1Entry(l1, i * 8);
    const l2Offset = e.l2Offset;
    if (l2Offset === 0) continue;
    const refcount = await ctx.store.get(Math.floor(l2Offset / C));
    if (refcount === undefined) continue;
    if ((refcount === 1) !== e.copied) {
      res.corruptions++;
      ctx.log?.(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${entryHex(ctx.l1, i * 8)} refcount=${refcount}`);
      if (repair) {
        const b = ctx.l1[i * 8] ?? 0;
        ctx.l1[i * 8] = refcount === 1 ? b | 0x80 : b & 0x7f;
        await ctx.file.write(l1Offset + i * 8, ctx.l1.slice(i * 8, i * 8 + 8), 'l1');
        res.corruptions--;
        res.corruptionsFixed++;
      }
    }
    if (l2Offset >= ctx.fileSize) continue; // reads as zeros: no entries
    const table = await ctx.read(l2Offset, C);
    const dv = view(table);
    let dirty = 0;
    for (let j = 0; j < ctx.l2Entries; j++) {
      const at = j * ctx.l2EntryBytes;
      const l2e = classifyL2Entry(dv, at, ctx.extendedL2, ctx.dataFile);
      if (l2e.type !== 'normal' && l2e.type !== 'zero-alloc') continue;
      const rc = ctx.dataFile ? 1 : await ctx.store.get(Math.floor(l2e.hostOffset / C));
      if (rc === undefined) continue;
      if ((rc === 1) === l2e.raw.copied) continue;
      res.corruptions++;
      ctx.log?.(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED data cluster: l2_entry=${entryHex(table, at)} refcount=${rc}`);
      if (repair) {
        const b = table[at] ?? 0;
        table[at] = rc === 1 ? b | 0x80 : b & 0x7f;
        dirty++;
      }
    }
    if (dirty > 0) {
      const clash = overlapsMetadata(ctx, l2Offset, C, 'active-l2');
      if (clash) {
        // As QEMU: the check stops there, failed.
        ctx.log?.('ERROR: Could not write L2 table; metadata overlap check failed: Input/output error');
        res.checkErrors++;
        throw ioError(`Input/output error (the COPIED repair of the L2 table at ${hex(l2Offset)} would overwrite the ${clash})`, { offset: l2Offset });
      }
      await ctx.file.write(l2Offset, table, 'l2');
      res.corruptions -= dirty;
      res.corruptionsFixed += dirty;
    }
  }
}

