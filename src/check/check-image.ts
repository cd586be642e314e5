/**
 * The checker's entry points. `checkImage` is one pass of `qemu-img check` on a qcow2 image held in
 * any BlockFile (QEMU's qcow2_co_check): it never writes unless a repair mode is given. With a
 * repair mode, a pass that leaves no errors and no corruptions also clears the dirty and corrupt
 * bits, as QEMU does. `checkAndRepair` is what the qemu-img command does around it: after a pass
 * that repaired something, the image is checked again and that result is reported, carrying the
 * repair counts of the first pass.
 */
import { Qcow2Error, isQcow2Error } from '../errors.js';
import { view } from '../format/bytes.js';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from '../format/constants.js';
import { SNAPSHOT_V3_MIN_EXTRA_DATA } from '../format/snapshot.js';
import { type ImageMetadata, readMetadata } from '../image/metadata.js';
import type { BlockFile } from '../io/block-file.js';
import { checkRefcounts } from './check-refcounts.js';
import { openContext } from './context.js';
import { type CheckCounts, type CheckReport, type RepairMode, emptyCounts, fixMode, anyFix } from './result.js';

export interface CheckOptions {
  /** 'leaks' frees leaked clusters; 'all' also fixes refcounts, COPIED flags and broken refcount structures. */
  repair?: RepairMode;
  /**
   * Where each message goes as it is found (qemu-img prints them as it goes). Given, the report's
   * `messages` stays empty, so a check that finds millions of problems holds none of their text.
   */
  onMessage?: (message: string) => void;
  /** No message is built at all (the counts and the failure are all that is wanted). */
  quiet?: boolean;
}

/**
 * One check pass. Throws a Qcow2Error when the image cannot be opened as qcow2 at all (what
 * qemu-img reports as "Could not open"); a check that starts but cannot finish returns a report
 * with `failure` set.
 */
export async function checkImage(file: BlockFile, opts: CheckOptions = {}): Promise<CheckReport> {
  const fix = fixMode(opts.repair);
  // Tables past the end of the file are classified by the check, not refused (as qemu-img check).
  const meta = await readMetadata(file, { tablesPastEnd: true });
  const messages: string[] = [];
  const res = emptyCounts();
  const ctx = await openContext(file, meta, fix, opts.quiet ? undefined : (opts.onMessage ?? ((m) => messages.push(m))));
  checkSnapshotEntries(meta, res, ctx.log);
  try {
    await checkRefcounts(ctx, res);
    if (anyFix(fix) && res.checkErrors === 0 && res.corruptions === 0) await markCleanAndConsistent(file, meta.header.version);
  } catch (err) {
    if (!isQcow2Error(err) && !(err instanceof Error)) throw err;
    const failure = isQcow2Error(err) ? err : new Qcow2Error('io', err.message, { cause: err });
    return { ...res, messages, failure };
  } finally {
    if (anyFix(fix)) await file.flush();
  }
  return { ...res, messages };
}

/**
 * QEMU's qcow2_check_read_snapshot_table(), run before the refcounts are counted: each entry of a
 * version 3 image with less extra data than the spec requires is a corruption. (We do not repair
 * the snapshot table: the message stays an ERROR under -r.)
 */
function checkSnapshotEntries(meta: ImageMetadata, res: CheckCounts, log: ((m: string) => void) | undefined): void {
  if (meta.header.version < 3) return;
  meta.snapshots.forEach((sn, i) => {
    if (sn.extraData.byteLength < SNAPSHOT_V3_MIN_EXTRA_DATA) {
      log?.(`ERROR snapshot table entry ${i} is incomplete`);
      res.corruptions++;
    }
  });
}

/** `qemu-img check [-r …]`: a pass, and when it repaired anything, a second pass to report. */
export async function checkAndRepair(file: BlockFile, opts: CheckOptions = {}): Promise<{ first: CheckReport; final: CheckReport }> {
  const first = await checkImage(file, opts);
  if (first.failure || (first.leaksFixed === 0 && first.corruptionsFixed === 0)) return { first, final: first };
  const again = await checkImage(file, { ...(opts.onMessage ? { onMessage: opts.onMessage } : {}), ...(opts.quiet ? { quiet: true } : {}) });
  return { first, final: { ...again, leaksFixed: first.leaksFixed, corruptionsFixed: first.corruptionsFixed } };
}

async function markCleanAndConsistent(file: BlockFile, version: number): Promise<void> {
  if (version < 3) return;
  const bytes = await file.read(72, 8);
  const dv = view(bytes);
  const features = dv.getBigUint64(0, false);
  const cleared = features & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT);
  if (cleared === features) return;
  await file.flush();
  dv.setBigUint64(0, cleared, false);
  await file.write(72, bytes, 'header');
}
