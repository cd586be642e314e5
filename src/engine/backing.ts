/**
 * Opening the backing file an image names (or the one the caller names instead), for both
 * engines: the name is resolved against the image's folder under the untrusted-image policy
 * (linked-path.ts), the format is the stored one or probed, raw and qcow2 only, the chain's depth
 * is bounded, and every layer below is opened read-only and unwrapped (wrapFile is for the top),
 * with its own passphrase (backingKeys: QEMU's backing.encrypt.key-secret).
 */
import { isQcow2Error, Qcow2Error, unsupported } from '../errors.js';
import { driving } from '../io/node-file.js';
import { checkBackingDepth, linkedPath } from './linked-path.js';
import { probeFormat } from './probe.js';
import { RawDevice } from './raw.js';
import type { BlockDevice, OpenOptions } from './types.js';

/** The engine's own opener for a qcow2 layer. */
export type OpenQcow2<O extends OpenOptions> = (path: string, opts: O, depth: number) => Promise<BlockDevice>;

export async function openBacking<O extends OpenOptions>(
  imagePath: string,
  name: string | undefined,
  format: string | undefined,
  opts: O,
  depth: number,
  openQcow2: OpenQcow2<O>,
): Promise<BlockDevice | undefined> {
  if (opts.backingOverride !== undefined) {
    if (opts.backingOverride === null) return undefined;
    return openLayer(opts.backingOverride.path, opts.backingOverride.format, opts, depth, openQcow2);
  }
  if (name === undefined) return undefined;
  const path = linkedPath(imagePath, name, 'backing file', opts);
  const fmt = format ?? (await probeFormat(path));
  if (fmt !== 'raw' && fmt !== 'qcow2') throw unsupported(`backing file format '${fmt}' is not supported`);
  return openLayer(path, fmt, opts, depth, openQcow2);
}

async function openLayer<O extends OpenOptions>(path: string, format: 'raw' | 'qcow2', opts: O, depth: number, openQcow2: OpenQcow2<O>): Promise<BlockDevice> {
  checkBackingDepth(depth);
  if (format === 'raw') return RawDevice.open(path, { readOnly: true, ...driving(opts) });
  const below: O = { ...opts, readOnly: true };
  delete below.backingOverride;
  delete below.wrapFile;
  delete below.snapshot;
  delete below.keySecret;
  delete below.backingKeys;
  const [key, ...deeper] = opts.backingKeys ?? [];
  if (key !== undefined) below.keySecret = key;
  if (deeper.length > 0) below.backingKeys = deeper;
  try {
    return await openQcow2(path, below, depth + 1);
  } catch (err) {
    // A layer's passphrase missing or wrong: QEMU's message says which layer, one prefix per level.
    if (isQcow2Error(err) && err.field === 'encrypt.key-secret') throw new Qcow2Error(err.code, `Could not open backing file: ${err.message}`, { field: err.field, cause: err });
    throw err;
  }
}
