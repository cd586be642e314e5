/**
 * Which guest ranges a layer allocates, the way `qemu-img rebase` asks it (QEMU's
 * bdrv_is_allocated and bdrv_is_allocated_above): from an offset, whether the run there is
 * allocated and how long the run is. A layer allocates what it answers for itself (data,
 * compressed or zero clusters); unallocated ranges read from the layer below. As in QEMU's qcow2
 * driver, a run ends at the end of the L2 table it is described by (rebase's progress steps
 * follow these runs).
 */
import { type BlockDevice, isQcow2 } from '../engine/types.js';

export interface AllocationRun {
  allocated: boolean;
  /** Bytes from the offset with the same answer (at least 1, at most the bytes asked about). */
  length: number;
}

/** Guest bytes one L2 table of a qcow2 layer describes (8-byte entries); Infinity for a raw layer. */
export function l2Span(layer: BlockDevice): number {
  return isQcow2(layer) ? layer.clusterSize * (layer.clusterSize / 8) : Infinity;
}

/** Whether `layer` itself allocates [offset, ...), and for how many of the next `bytes` bytes. */
export async function allocationRun(layer: BlockDevice, offset: number, bytes: number): Promise<AllocationRun> {
  const [first] = await layer.mapExtents(offset, bytes);
  if (first === undefined) return { allocated: false, length: bytes };
  const span = l2Span(layer);
  const tableEnd = Number.isFinite(span) ? (Math.floor(offset / span) + 1) * span : Infinity;
  const length = Math.max(1, Math.min(first.start + first.length, tableEnd, offset + bytes) - offset);
  return { allocated: first.kind !== 'unallocated', length };
}

/**
 * Whether any layer from `top` down to, not including, `base` allocates [offset, ...), and for how
 * many bytes that answer holds. A layer shorter than the offset counts as allocating it (its zeros
 * past its end hide what lies below, as QEMU has it).
 */
export async function allocationRunAbove(top: BlockDevice, base: BlockDevice, offset: number, bytes: number): Promise<AllocationRun> {
  let length = bytes;
  for (let layer: BlockDevice | undefined = top; layer !== undefined && layer !== base; layer = layer.backing) {
    if (offset >= layer.virtualSize) return { allocated: true, length };
    const run = await allocationRun(layer, offset, Math.min(length, layer.virtualSize - offset));
    if (run.allocated) return { allocated: true, length: run.length };
    length = Math.min(length, run.length);
  }
  return { allocated: false, length };
}
