/**
 * The optimized engine's device. Guest requests take the range lock on their clusters (reads
 * shared, changes exclusive); metadata changes also take the metadata mutex; image-level operations
 * (the shared front's `whole`) lock the whole device and then the mutex. Lock order is always
 * range lock, then mutex.
 */
import { sharedPool, WorkerPool } from '../compress/pool.js';
import { checkRequest } from '../engine/request.js';
import type { Extent, WriteZeroesOptions } from '../engine/types.js';
import { isQcow2Error } from '../errors.js';
import { closeAll } from '../io/block-file.js';
import { mapExtents } from '../qcow2/extents.js';
import { Qcow2Front } from '../qcow2/front.js';
import { discard, writeZeroes } from '../qcow2/zero-discard.js';
import { prepareCompressed, writeCompressedClusters } from './compressed-write.js';
import { signalCorruption } from './header.js';
import { RangeLock } from './range-lock.js';
import { readGuestInto } from './read.js';
import type { OptState } from './state.js';
import { writeGuest } from './write.js';

export class OptimizedImage extends Qcow2Front<OptState> {
  private readonly ranges = new RangeLock();
  /** The last compressed write's turn: the next one stores its clusters after it. */
  private compressedTail: Promise<void> = Promise.resolve();

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRequest('read', offset, target.byteLength, this.virtualSize);
    return this.onClusters(offset, target.byteLength, true, () => readGuestInto(this.state, offset, target));
  }

  protected writeData(offset: number, data: Uint8Array): Promise<void> {
    return this.onClusters(offset, data.byteLength, false, () => writeGuest(this.state, offset, data));
  }

  /** A partial unit reads its neighbours: one cluster more is locked on each side. */
  protected zeroData(offset: number, length: number, opts: WriteZeroesOptions): Promise<void> {
    return this.onClusters(offset, length, false, () => this.state.meta.run(() => this.trimmed(writeZeroes(this.state, offset, length, opts))), 1);
  }

  protected discardData(offset: number, length: number): Promise<void> {
    return this.onClusters(offset, length, false, () => this.state.meta.run(() => this.trimmed(discard(this.state, offset, length))));
  }

  protected extents(offset: number, length: number): Promise<Extent[]> {
    return this.onClusters(offset, length, true, () => mapExtents(this.state, offset, length));
  }

  /**
   * Compression runs as soon as the call is made, outside every lock, so that calls made one after
   * another compress in parallel on the codec's workers; the clusters are then stored in the order
   * of the calls (QEMU packs compressed clusters in the order written, and so do we, whatever
   * order the workers finish in).
   */
  async writeCompressed(offset: number, data: Uint8Array): Promise<void> {
    checkRequest('compressed write', offset, data.byteLength, this.virtualSize);
    const prepared = prepareCompressed(this.state, offset, data);
    prepared.catch(() => {}); // awaited below, in turn
    const turn = this.compressedTail.then(async () => {
      const clusters = await prepared;
      await this.beforeWrite(offset, data.byteLength);
      await this.onClusters(offset, data.byteLength, false, () => this.state.meta.run(() => writeCompressedClusters(this.state, clusters)));
    });
    this.compressedTail = turn.catch(() => {});
    return turn;
  }

  protected writeBackCaches(): Promise<void> {
    return this.state.order.flushCaches();
  }

  protected override async closeFiles(): Promise<void> {
    const codec = this.state.codec;
    await closeAll([() => super.closeFiles(), () => (codec instanceof WorkerPool && codec !== sharedPool() ? codec.close() : undefined)]);
  }

  private async trimmed(work: Promise<void>): Promise<void> {
    await work;
    await this.state.order.trim();
  }

  private onClusters<T>(offset: number, length: number, shared: boolean, fn: () => Promise<T>, margin = 0): Promise<T> {
    const C = this.state.geometry.clusterSize;
    const first = Math.floor(offset / C) - margin;
    const last = Math.floor((offset + Math.max(length, 1) - 1) / C) + margin;
    return this.ranges.run(first, last, shared, fn).catch((err: unknown) => this.afterFailure(err));
  }

  /**
   * A request that met an impossible entry (pointing into metadata, past the end of the file,
   * unaligned…) failed with a 'corrupt' error: the image is marked corrupt (header.ts) once the
   * request's locks are released, and the error goes on to the caller.
   */
  private async afterFailure(err: unknown): Promise<never> {
    if (isQcow2Error(err) && err.code === 'corrupt' && !this.state.features.corrupt) {
      await this.state.meta.run(() => signalCorruption(this.state)).catch(() => {
        // Marking failed (a failing disk): the engine still refuses writes (features.corrupt).
      });
    }
    throw err;
  }

  /** The whole device and the metadata mutex. */
  protected whole<T>(fn: () => Promise<T>): Promise<T> {
    return this.ranges
      .runAll(() =>
        this.state.meta.run(async () => {
          const out = await fn();
          await this.state.order.trim();
          return out;
        }),
      )
      .catch((err: unknown) => this.afterFailure(err));
  }
}
