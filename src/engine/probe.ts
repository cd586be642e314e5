/** Telling a qcow2 image from a raw one by its magic. */
import { open } from 'node:fs/promises';
import { ioError } from '../errors.js';

export type ImageFormat = 'raw' | 'qcow2';

const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];

export async function probeFormat(path: string): Promise<ImageFormat> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw ioError(`cannot open '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  try {
    const magic = new Uint8Array(4);
    const { bytesRead } = await handle.read(magic, 0, 4, 0);
    return bytesRead === 4 && QCOW2_MAGIC.every((b, i) => magic[i] === b) ? 'qcow2' : 'raw';
  } finally {
    await handle.close();
  }
}

