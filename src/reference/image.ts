/**
 * The reference engine: a qcow2 image with every operation written through, one cluster at a time
 * and one request at a time. The shared front (src/qcow2/front.ts) does the checks; this file
 * calls the module that does each operation.
 */
import { checkRequest } from '../engine/request.js';
import type { Extent, WriteZeroesOptions } from '../engine/types.js';
import { mapExtents } from '../qcow2/extents.js';
import { Qcow2Front } from '../qcow2/front.js';
import { discard, writeZeroes } from '../qcow2/zero-discard.js';
import { writeCompressed } from './compressed-write.js';
import { readGuest } from './read.js';
import type { RefState } from './state.js';
import { writeGuest } from './write.js';

export class ReferenceImage extends Qcow2Front<RefState> {
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRequest('read', offset, target.byteLength, this.virtualSize);
    target.set(await readGuest(this.state, offset, target.byteLength));
  }

  protected writeData(offset: number, data: Uint8Array): Promise<void> {
    return writeGuest(this.state, offset, data);
  }

  protected zeroData(offset: number, length: number, opts: WriteZeroesOptions): Promise<void> {
    return writeZeroes(this.state, offset, length, opts);
  }

  protected discardData(offset: number, length: number): Promise<void> {
    return discard(this.state, offset, length);
  }

  protected extents(offset: number, length: number): Promise<Extent[]> {
    return mapExtents(this.state, offset, length);
  }

  async writeCompressed(offset: number, data: Uint8Array): Promise<void> {
    checkRequest('compressed write', offset, data.byteLength, this.virtualSize);
    await this.beforeWrite(offset, data.byteLength);
    await writeCompressed(this.state, offset, data);
  }

  /** One request at a time: every operation already has the image to itself. */
  protected whole<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  /** Nothing is cached: every write is already on the disk. */
  protected async writeBackCaches(): Promise<void> {}
}
