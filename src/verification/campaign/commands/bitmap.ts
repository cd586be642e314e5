/**
 * Persistent bitmap edits (qemu-img bitmap's operations, through the engine's editBitmaps): add,
 * remove, clear, enable, disable. The model follows; the bits are judged by QEMU at the end of the
 * sequence (run.ts).
 */
import type fc from 'fast-check';
import type { BitmapEdit } from '../../../engine/types.js';
import type { Model } from '../model.js';
import { onAll, type System } from '../system.js';

type Cmd = fc.AsyncCommand<Model, System>;

export type BitmapOp = 'add' | 'remove' | 'clear' | 'enable' | 'disable';

/** Granularities of the bitmaps added during a sequence (always given: the model does not guess defaults). */
const ADDED_GRANULARITIES = [512, 4096, 65536, 1 << 20];

/** At most this many bitmaps at once. */
const MAX_BITMAPS = 3;

export class BitmapEditCommand implements Cmd {
  constructor(readonly op: BitmapOp, readonly pick: number) {}

  check = (m: Readonly<Model>) => m.shape.version === 3 && (this.op === 'add' ? m.bitmaps.length < MAX_BITMAPS : m.bitmaps.length > 0);

  async run(model: Model, sys: System): Promise<void> {
    if (this.op === 'add') {
      const name = `c${model.nextBitmap++}`;
      const granularity = ADDED_GRANULARITIES[this.pick % ADDED_GRANULARITIES.length]!;
      const disabled = this.pick % 5 === 4;
      await onAll(sys, 'adding a bitmap', (d) => d.editBitmaps([{ op: 'add', name, granularity, disabled }]));
      model.addBitmap(name, granularity, !disabled);
      return;
    }
    const target = model.bitmaps[this.pick % model.bitmaps.length]!;
    const edit: BitmapEdit = { op: this.op, name: target.name };
    await onAll(sys, `bitmap ${this.op}`, (d) => d.editBitmaps([edit]));
    if (this.op === 'remove') model.removeBitmap(target.name);
    else if (this.op === 'clear') target.granules.fill(0);
    else target.enabled = this.op === 'enable';
  }

  toString = () => `bitmap.${this.op}(#${this.pick})`;
}
