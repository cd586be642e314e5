/**
 * qemu-img convert --bitmaps (QEMU 7.2's convert_check_bitmaps and convert_copy_bitmaps): every
 * persistent bitmap of the source is added to the target with its granularity and its enabled
 * state, then filled by merging the source's bits into it — the engine's bitmap edits, as
 * `qemu-img bitmap --add` and `--merge -b` make them (src/cli/bitmap.ts).
 *
 * Only a qcow2 v3 source and target hold persistent bitmaps. A bitmap the source left in_use
 * (inconsistent) is refused, or skipped with a warning (--skip-broken-bitmaps). QEMU walks the
 * bitmaps last first (it loads them into a list at its head): refusals, warnings and failures
 * come in that order; the target's bitmap directory ends up in the source's order.
 */
import { type BlockDevice, isQcow2, type Qcow2Device } from '../engine/types.js';
import { isQcow2Error, Qcow2Error, unsupported, usage } from '../errors.js';
import { BITMAP_FLAG_AUTO, BITMAP_FLAG_IN_USE } from '../format/constants.js';
import { readMetadata, type ImageMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';

export interface SourceBitmapInfo {
  name: string;
  granularity: number;
  enabled: boolean;
  /** Left in_use: not saved completely; its bits cannot be trusted. */
  inconsistent: boolean;
}

/** The metadata of a qcow2 device's image file, or undefined (raw, or opened without a path). */
async function metadataOf(device: BlockDevice): Promise<ImageMetadata | undefined> {
  if (!isQcow2(device) || device.path === undefined) return undefined;
  const file = await NodeFile.open(device.path, { readOnly: true });
  try {
    return await readMetadata(file);
  } finally {
    await file.close();
  }
}

/** Whether the device's image can hold persistent bitmaps (qcow2 v3). */
export async function supportsBitmaps(device: BlockDevice): Promise<boolean> {
  return ((await metadataOf(device))?.header.version ?? 0) >= 3;
}

/**
 * The source's persistent bitmaps, in the order QEMU walks them (the directory's last first), after
 * convert_check_bitmaps' checks: the source holds bitmaps at all, and none is inconsistent unless
 * those are to be skipped. Bitmaps marked stale (autoclear bit 0 clear) are not loaded by QEMU: none.
 */
export async function checkedSourceBitmaps(source: BlockDevice, skipBroken: boolean): Promise<SourceBitmapInfo[]> {
  const meta = await metadataOf(source);
  if (meta === undefined || meta.header.version < 3) throw unsupported('Source lacks bitmap support');
  const list = meta.layout.features.bitmapsConsistent
    ? meta.bitmaps.map((e) => ({
        name: e.name,
        granularity: 2 ** e.granularityBits,
        enabled: (e.flags & BITMAP_FLAG_AUTO) !== 0,
        inconsistent: (e.flags & BITMAP_FLAG_IN_USE) !== 0,
      }))
    : [];
  list.reverse();
  const broken = list.find((b) => b.inconsistent);
  if (broken && !skipBroken) {
    throw usage(`Cannot copy inconsistent bitmap '${broken.name}'\nTry --skip-broken-bitmaps, or use 'qcow2 bitmap --remove' to delete it`);
  }
  return list;
}

/**
 * Copies `bitmaps` (from checkedSourceBitmaps) of `source` into `target` in QEMU's order; `warn`
 * hears of each inconsistent one skipped. The first that cannot be made fails the copy ("Failed to
 * create bitmap NAME: …", "Failed to populate bitmap NAME: …"; one that could not be filled is
 * removed), those made before it are kept. The bitmaps made are then listed in the source's order,
 * as QEMU stores them (it keeps them in a list, each added at its head).
 */
export async function copyBitmaps(source: Qcow2Device, target: Qcow2Device, bitmaps: readonly SourceBitmapInfo[], warn: (message: string) => void): Promise<void> {
  const made: SourceBitmapInfo[] = [];
  let failure: unknown;
  for (const b of bitmaps) {
    if (b.inconsistent) {
      warn(`Skipping inconsistent bitmap '${b.name}'`);
      continue;
    }
    failure = await copyBitmap(source, target, b);
    if (failure !== undefined) break;
    made.push(b);
  }
  if (made.length > 1) {
    // Made again, in the source's order (each is as it was: the same bits merged in).
    await target.editBitmaps(made.map((b) => ({ op: 'remove', name: b.name })));
    for (const b of made.reverse()) {
      const err = await copyBitmap(source, target, b);
      if (err !== undefined) throw err;
    }
  }
  if (failure !== undefined) throw failure;
}

/** Adds bitmap `b` to the target and merges the source's into it; the failure, or undefined. */
async function copyBitmap(source: Qcow2Device, target: Qcow2Device, b: SourceBitmapInfo): Promise<unknown> {
  try {
    await target.editBitmaps([{ op: 'add', name: b.name, granularity: b.granularity, disabled: !b.enabled }]);
  } catch (err) {
    return failed(`Failed to create bitmap ${b.name}: `, err);
  }
  try {
    const bits = await source.readBitmap(b.name);
    await target.editBitmaps([{ op: 'merge', name: b.name, source: bits, sourceSize: source.virtualSize }]);
  } catch (err) {
    await target.editBitmaps([{ op: 'remove', name: b.name }]);
    return failed(`Failed to populate bitmap ${b.name}: `, err);
  }
  return undefined;
}

/** `prefix` before the reason, keeping the reason's code. */
function failed(prefix: string, err: unknown): unknown {
  if (!isQcow2Error(err)) return err;
  return new Qcow2Error(err.code, `${prefix}${err.message}`, { cause: err });
}
