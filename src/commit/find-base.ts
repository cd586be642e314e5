/**
 * Which layer of a chain `-b BASE` names, as QEMU's bdrv_find_backing_image finds it: looking
 * down from the top's backing file, a layer is BASE when BASE is the backing name the image above
 * stores, or the path the layer was opened at, or (resolved against the folder of the image above,
 * both sides canonical) the same file.
 */
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { ChainLayer } from './chain-layers.js';

async function canonical(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

/** The index in `layers` (1 or more) of the layer `name` names, or undefined. */
export async function findBackingLayer(layers: readonly ChainLayer[], name: string): Promise<number | undefined> {
  for (let i = 1; i < layers.length; i++) {
    const layer = layers[i]!;
    if (name === layer.storedName || name === layer.path) return i;
    const above = layers[i - 1]!.path;
    const wanted = await canonical(isAbsolute(name) ? name : join(dirname(above), name));
    if (wanted !== undefined && wanted === (await canonical(layer.path))) return i;
  }
  return undefined;
}
