/**
 * Opening an image with the reference engine: checked metadata, then its external data file and
 * backing chain (names are resolved against the image's folder; an untrusted-image policy refuses
 * to follow them), then repair of an image left dirty.
 */
import { openBacking } from '../engine/backing.js';
import { linkedPath } from '../engine/linked-path.js';
import type { BlockDevice, OpenOptions } from '../engine/types.js';
import { corrupt, unsupported } from '../errors.js';
import { BITMAP_FLAG_AUTO, INCOMPAT_DIRTY } from '../format/constants.js';
import { readMetadata } from '../image/metadata.js';
import { driving, NodeFile } from '../io/node-file.js';
import { DurableFile } from './durable-file.js';
import { ReferenceImage } from './image.js';
import { rebuildRefcounts } from './rebuild.js';
import { type RefState, writeHeader } from './state.js';

export async function openReference(path: string, opts: OpenOptions = {}, depth = 0): Promise<ReferenceImage> {
  const readOnly = opts.readOnly ?? false;
  const nodeFile = await NodeFile.open(path, { readOnly, ...driving(opts) });
  const file = new DurableFile(opts.wrapFile ? opts.wrapFile(nodeFile, 'image') : nodeFile);
  const opened: BlockDevice[] = [];
  try {
    const meta = await readMetadata(file);
    const { features } = meta.layout;
    if (meta.header.cryptMethod !== 0) throw unsupported('encrypted images can be described (info) but not read or written');
    if (features.corrupt && !readOnly) throw corrupt('the image is marked corrupt: it can only be opened read-only', { field: 'incompatible_features', offset: 72 });
    let dataFile: DurableFile | undefined;
    if (features.externalDataFile) {
      if (meta.dataFile === undefined) throw unsupported('the image uses an external data file but does not name it');
      const plain = await NodeFile.open(linkedPath(path, meta.dataFile, 'data file', opts), { readOnly, ...driving(opts) });
      dataFile = new DurableFile(opts.wrapFile ? opts.wrapFile(plain, 'data-file') : plain);
    }
    const backing = await openBacking(path, meta.backingFile, meta.backingFormat, opts, depth, openReference);
    if (backing) opened.push(backing);
    const state: RefState = {
      file,
      dataFile,
      header: meta.header,
      extensions: meta.extensions,
      backingName: meta.backingFile,
      geometry: meta.layout.geometry,
      features: { ...features },
      backing,
      readOnly,
      activeBitmaps: features.bitmapsConsistent && meta.bitmaps.some((b) => (b.flags & BITMAP_FLAG_AUTO) !== 0),
      snapshotTableBytes: meta.snapshotTableSize,
      freeHint: 0,
    };
    if (features.dirty && !readOnly) {
      await rebuildRefcounts(state);
      state.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
      state.features.dirty = false;
      await writeHeader(state);
      await file.flush();
    }
    return new ReferenceImage(state);
  } catch (err) {
    for (const d of opened) await d.close();
    await file.close();
    throw err;
  }
}
