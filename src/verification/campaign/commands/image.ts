/** Image-level commands: flush, reopen, snapshots, resize. */
import type fc from 'fast-check';
import type { Qcow2Device } from '../../../engine/types.js';
import { ensure, ensureRejects } from '../check.js';
import type { Model } from '../model.js';
import { onAll, type System } from '../system.js';
import { expectRange } from './data.js';

type Cmd = fc.AsyncCommand<Model, System>;

export class FlushCommand implements Cmd {
  check = () => true;
  async run(_model: Model, sys: System): Promise<void> {
    await onAll(sys, 'a flush', (d) => d.flush());
  }
  toString = () => 'flush()';
}

export class ReopenCommand implements Cmd {
  check = () => true;
  async run(model: Model, sys: System): Promise<void> {
    await sys.reopen();
    for (const l of sys.lanes) ensure(l.dev.virtualSize === model.size, `${l.engine.name}: virtual size ${l.dev.virtualSize}, model ${model.size}`);
    await expectRange(model, sys, 0, model.size);
  }
  toString = () => 'reopen()';
}

/**
 * Runs a snapshot operation on every engine. Narrow refcounts (1 or 2 bits) overflow once clusters are
 * shared: there the operation may be refused up front with nothing changed, by every engine alike;
 * true when it was.
 */
async function refusedForRefcounts(model: Model, sys: System, what: string, op: (d: Qcow2Device) => Promise<unknown>): Promise<boolean> {
  if (model.shape.refcountBits > 2) {
    await onAll(sys, what, op);
    return false;
  }
  const refused = await onAll(sys, what, (d) =>
    op(d).then(
      () => false,
      (err: Error) => /at their maximum/.test(err.message) || Promise.reject(err),
    ),
  );
  ensure(new Set(refused).size === 1, `engines disagree on refusing ${what}: ${refused.join(', ')}`);
  return refused[0]!;
}

export class SnapshotCreateCommand implements Cmd {
  check = (m: Readonly<Model>) => !m.shape.externalDataFile && m.snapshots.size < 4;
  async run(model: Model, sys: System): Promise<void> {
    const name = `snap${model.nextSnapshot++}`;
    if (await refusedForRefcounts(model, sys, 'a snapshot', (d) => d.createSnapshot(name))) return;
    model.snapshot(name);
    for (const l of sys.lanes) {
      const names = (await l.dev.listSnapshots()).map((s) => s.name);
      ensure(names.join() === [...model.snapshots.keys()].join(), `${l.engine.name}: snapshots [${names.join()}], model [${[...model.snapshots.keys()].join()}]`);
    }
  }
  toString = () => 'snapshot.create()';
}

export class SnapshotApplyCommand implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.snapshots.size > 0;
  async run(model: Model, sys: System): Promise<void> {
    const names = [...model.snapshots.keys()];
    const name = names[this.pick % names.length]!;
    if (model.hasEnabledBitmap) {
      // As QEMU: reverting would leave the enabled bitmaps describing other data.
      for (const l of sys.lanes) await ensureRejects(() => l.dev.applySnapshot(name), /active dirty bitmaps/, `applying a snapshot with an enabled bitmap (${l.engine.name})`);
      await expectRange(model, sys, 0, model.size);
      return;
    }
    if (await refusedForRefcounts(model, sys, 'applying a snapshot', (d) => d.applySnapshot(name))) {
      await expectRange(model, sys, 0, model.size);
      return;
    }
    model.apply(name);
    for (const l of sys.lanes) ensure(l.dev.virtualSize === model.size, `${l.engine.name}: virtual size ${l.dev.virtualSize}, model ${model.size}`);
    await expectRange(model, sys, 0, model.size);
  }
  toString = () => `snapshot.apply(#${this.pick})`;
}

export class ResizeCommand implements Cmd {
  constructor(readonly grow: number) {}
  check = (m: Readonly<Model>) => m.size < 4 * 1024 * 1024;
  async run(model: Model, sys: System): Promise<void> {
    const newSize = model.size + 512 * (1 + (this.grow % 300));
    await onAll(sys, 'a resize', (d) => d.resize(newSize));
    model.resize(newSize);
    for (const l of sys.lanes) ensure(l.dev.virtualSize === newSize, `${l.engine.name}: virtual size ${l.dev.virtualSize} after resize to ${newSize}`);
    await expectRange(model, sys, 0, model.size);
  }
  toString = () => `resize(+${512 * (1 + (this.grow % 300))})`;
}
