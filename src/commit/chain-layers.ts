/**
 * The layers of an open backing chain, top first, each with the path it was opened at and the
 * backing name the image above it stores: the paths come from the same rule the engines opened
 * them by (src/engine/linked-path.ts), so nothing here trusts a stored name any further.
 */
import { linkedPath } from '../engine/linked-path.js';
import { type BlockDevice, isQcow2 } from '../engine/types.js';

export interface ChainLayer {
  device: BlockDevice;
  /** The path the layer was opened at (the top: as the caller named it). */
  path: string;
  /** The backing name stored in the layer above (undefined for the top). */
  storedName: string | undefined;
}

export function chainLayers(top: BlockDevice, topPath: string): ChainLayer[] {
  const layers: ChainLayer[] = [{ device: top, path: topPath, storedName: undefined }];
  for (let above = top; above.backing !== undefined; above = above.backing) {
    if (!isQcow2(above) || above.backingName === undefined) break;
    const path = linkedPath(above.path ?? layers[layers.length - 1]!.path, above.backingName, 'backing file', {});
    layers.push({ device: above.backing, path, storedName: above.backingName });
  }
  return layers;
}
