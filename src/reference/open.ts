/**
 * Opening an image with the reference engine: the shared opening steps (src/qcow2/open.ts), every
 * file behind a DurableFile, the reference store, then repair of an image left dirty.
 */
import type { OpenOptions } from '../engine/types.js';
import { commonState, openLayers, repairIfDirty, withStore } from '../qcow2/open.js';
import { DurableFile } from './durable-file.js';
import { ReferenceImage } from './image.js';
import type { RefState } from './state.js';
import { ReferenceStore } from './store.js';

export async function openReference(path: string, opts: OpenOptions = {}, depth = 0): Promise<ReferenceImage> {
  const layers = await openLayers(path, opts, depth, openReference);
  try {
    const files = {
      file: new DurableFile(layers.file),
      dataFile: layers.dataFile && new DurableFile(layers.dataFile),
      backing: layers.backing,
    };
    const st: RefState = withStore({ ...commonState(layers.meta, { ...files, crypto: layers.crypto }, opts.readOnly ?? false, layers.paths), ...files, lazyRefcounts: false }, (s) => new ReferenceStore(s));
    await repairIfDirty(st);
    return new ReferenceImage(st);
  } catch (err) {
    await layers.close().catch(() => {});
    throw err;
  }
}
