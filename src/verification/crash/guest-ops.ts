/**
 * A workload's guest requests, once: what each does to the device, what it does to the byte-array
 * model, and which guest bytes it may change (unsettled until a flush returns). Used by the crash
 * recorder (workload.ts) and by error injection (faults.ts).
 */
import { Model } from '../campaign/model.js';
import { patternBytes } from '../campaign/system.js';
import type { Qcow2Device } from '../../engine/types.js';
import type { Step, Workload } from './types.js';

/** The model of a workload's guest, starting from the bytes QEMU reads from its image. */
export function modelOf(w: Workload, start: Uint8Array): Model {
  const model = new Model({ version: 3, clusterSize: w.clusterSize, backing: undefined, dataFileRaw: false, externalDataFile: false, refcountBits: 16, bitmaps: [] }, w.size);
  model.bytes.set(start);
  return model;
}

/** The guest bytes a step may change (a resize: the bytes it adds), if any. */
export function rangeOf(step: Step, model: Model): [number, number] | undefined {
  switch (step.op) {
    case 'write':
    case 'zero':
    case 'discard':
      return [step.offset, step.offset + step.length];
    case 'compressed':
      return [step.offset, step.offset + model.shape.clusterSize];
    case 'resize':
      return [model.size, step.size];
    default:
      return undefined;
  }
}

export async function runStep(dev: Qcow2Device, step: Step): Promise<void> {
  switch (step.op) {
    case 'write':
      return dev.write(step.offset, patternBytes(step.length, step.seed, false));
    case 'zero':
      return dev.writeZeroes(step.offset, step.length, { unmap: step.unmap ?? false });
    case 'discard':
      return dev.discard(step.offset, step.length);
    case 'compressed':
      return dev.writeCompressed(step.offset, patternBytes(dev.clusterSize, step.seed, step.seed === 0));
    case 'flush':
      return dev.flush();
    case 'resize':
      return dev.resize(step.size, step.preallocation === undefined ? {} : { preallocation: step.preallocation });
    case 'snapshot':
      return void (await dev.createSnapshot(step.name));
    case 'delete-snapshot':
      return dev.deleteSnapshot(step.name);
    case 'close':
      return dev.close();
  }
}

/** What a step that succeeded did to the guest's bytes. */
export function modelStep(model: Model, step: Step): void {
  switch (step.op) {
    case 'write':
      return model.write(step.offset, patternBytes(step.length, step.seed, false));
    case 'zero':
      return model.zero(step.offset, step.length);
    case 'discard':
      return model.discard(step.offset, step.length);
    case 'compressed':
      return model.write(step.offset, patternBytes(model.shape.clusterSize, step.seed, step.seed === 0));
    case 'resize':
      return model.resize(step.size);
    default:
      return;
  }
}

