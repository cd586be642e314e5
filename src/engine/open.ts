/**
 * Opens an image file as a BlockDevice, by explicit format or by probing its magic.
 * qcow2 images open with the optimized engine: it is what every user-facing path runs on. The
 * reference engine (src/reference) is the specification it is checked against.
 */
import { openOptimized } from '../optimized/open.js';
import { probeFormat } from './probe.js';
import { driving, type FileDriving } from '../io/node-file.js';
import { RawDevice } from './raw.js';
import type { BlockDevice, Qcow2Device } from './types.js';

import type { ImageFormat } from './probe.js';

export { probeFormat, type ImageFormat } from './probe.js';

export interface OpenImageOptions extends FileDriving {
  /** Without it the format is probed: 'QFI\xfb' at offset 0 means qcow2, anything else raw. */
  format?: ImageFormat;
  readOnly?: boolean;
  /** Do not follow backing / data file names stored in the image. */
  untrusted?: boolean;
}

export async function openImage(path: string, opts: OpenImageOptions = {}): Promise<BlockDevice> {
  const format = opts.format ?? (await probeFormat(path));
  if (format === 'raw') return RawDevice.open(path, { readOnly: opts.readOnly ?? false, ...driving(opts) });
  return openQcow2(path, opts);
}

/** A qcow2 image for the CLI: the optimized engine. */
export async function openQcow2(path: string, opts: Omit<OpenImageOptions, 'format'> = {}): Promise<Qcow2Device> {
  return openOptimized(path, {
    readOnly: opts.readOnly ?? false,
    ...(opts.untrusted ? { followFileNames: false } : {}),
    ...driving(opts),
  });
}
