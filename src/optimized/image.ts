/**
 * The optimized engine's device. Guest requests take the range lock on their clusters (reads
 * shared, changes exclusive); metadata changes also take the metadata mutex; image-level operations
 * lock the whole device and then the mutex. Lock order is always range lock, then mutex.
 */
import { sharedPool, WorkerPool } from '../compress/pool.js';
import type { BlockDevice, Extent, Qcow2Device, SnapshotInfo, WriteZeroesOptions } from '../engine/types.js';
import { stoppedError } from '../engine/stopped.js';
import { isQcow2Error, unsupported, usage } from '../errors.js';
import { AUTOCLEAR_DATA_FILE_RAW } from '../format/constants.js';
import { dropBitmaps } from './bitmaps.js';
import { prepareCompressed, writeCompressedClusters } from './compressed-write.js';
import { mapExtents } from './extents.js';
import { setDirtyBit, signalCorruption, underDirtyBit, writeHeader } from './header.js';
import { RangeLock } from './range-lock.js';
import { readGuestInto } from './read.js';
import { resize } from './resize.js';
import { applySnapshot, createSnapshot, deleteSnapshot, readSnapshots, snapshotInfo } from './snapshots.js';
import { type OptState, poisoned } from './state.js';
import { writeGuest } from './write.js';
import { discard, writeZeroes } from './zero-discard.js';

export class OptimizedImage implements Qcow2Device {
  private autoclearDone = false;
  private readonly ranges = new RangeLock();
  /** The last compressed write's turn: the next one stores its clusters after it. */
  private compressedTail: Promise<void> = Promise.resolve();

  constructor(readonly state: OptState) {}

  get virtualSize(): number {
    return this.state.geometry.virtualSize;
  }
  get clusterSize(): number {
    return this.state.geometry.clusterSize;
  }
  get readOnly(): boolean {
    return this.state.readOnly;
  }
  get backing(): BlockDevice | undefined {
    return this.state.backing;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    this.checkRange(offset, target.byteLength);
    return this.onClusters(offset, target.byteLength, true, () => readGuestInto(this.state, offset, target));
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.byteLength);
    await this.beforeWrite();
    await this.onClusters(offset, data.byteLength, false, () => writeGuest(this.state, offset, data));
  }

  async writeZeroes(offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
    this.checkRange(offset, length);
    await this.beforeWrite();
    // A partial unit reads its neighbours; lock one cluster more on each side.
    await this.onClusters(offset, length, false, () => this.state.meta.run(() => this.trimmed(writeZeroes(this.state, offset, length, opts))), 1);
  }

  async discard(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    await this.beforeWrite();
    await this.onClusters(offset, length, false, () => this.state.meta.run(() => this.trimmed(discard(this.state, offset, length))));
  }

  /**
   * Compression runs as soon as the call is made, outside every lock, so that calls made one after
   * another compress in parallel on the codec's workers; the clusters are then stored in the order
   * of the calls (QEMU packs compressed clusters in the order written, and so do we, whatever
   * order the workers finish in).
   */
  async writeCompressed(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.byteLength);
    const prepared = prepareCompressed(this.state, offset, data);
    prepared.catch(() => {}); // awaited below, in turn
    const turn = this.compressedTail.then(async () => {
      const clusters = await prepared;
      await this.beforeWrite();
      await this.onClusters(offset, data.byteLength, false, () => this.state.meta.run(() => writeCompressedClusters(this.state, clusters)));
    });
    this.compressedTail = turn.catch(() => {});
    return turn;
  }

  async flush(): Promise<void> {
    if (this.state.readOnly) return;
    this.refuseIfStopped();
    await this.whole(async () => {
      await this.state.order.flushCaches();
      await this.state.dataFile?.flush();
      await this.state.file.flush();
    });
  }

  async resize(newSize: number): Promise<void> {
    await this.beforeWrite();
    await this.whole(() => resize(this.state, newSize));
  }

  async mapExtents(offset: number, length: number): Promise<Extent[]> {
    this.checkRange(offset, length);
    return this.onClusters(offset, length, true, () => mapExtents(this.state, offset, length));
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    return this.whole(async () => (await readSnapshots(this.state)).map((e) => snapshotInfo(e, this.virtualSize)));
  }

  async createSnapshot(name: string): Promise<SnapshotInfo> {
    await this.beforeWrite();
    return this.whole(async () => snapshotInfo(await underDirtyBit(this.state, () => createSnapshot(this.state, name)), this.virtualSize));
  }

  async applySnapshot(idOrName: string): Promise<void> {
    if (this.state.activeBitmaps) throw unsupported('Device has active dirty bitmaps');
    await this.beforeWrite();
    await this.whole(() => underDirtyBit(this.state, () => applySnapshot(this.state, idOrName)));
  }

  async deleteSnapshot(idOrName: string): Promise<void> {
    await this.beforeWrite();
    await this.whole(() => underDirtyBit(this.state, () => deleteSnapshot(this.state, idOrName)));
  }

  async close(): Promise<void> {
    const failure = poisoned(this.state);
    if (failure) {
      await this.closeFiles();
      throw stoppedError(failure);
    }
    await this.flush();
    // Lazy refcounts left the image dirty: everything is on disk now, refcounts included.
    const st = this.state;
    if (st.features.dirty && !st.readOnly && !st.keepDirty && !st.features.corrupt) await this.whole(() => setDirtyBit(st, false));
    await this.closeFiles();
  }

  private async closeFiles(): Promise<void> {
    await this.state.backing?.close();
    await this.state.dataFile?.close();
    await this.state.file.close();
    if (this.state.codec instanceof WorkerPool && this.state.codec !== sharedPool()) await this.state.codec.close();
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
  private whole<T>(fn: () => Promise<T>): Promise<T> {
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

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw usage(`invalid request: offset ${offset}, length ${length}`);
    }
    if (offset + length > this.virtualSize) {
      throw usage(`request at ${offset} of ${length} bytes is beyond the end of the disk (${this.virtualSize} bytes)`);
    }
  }

  /** As the reference engine: refuse read-only/corrupt images; clear autoclear bits (bitmaps go stale). */
  private async beforeWrite(): Promise<void> {
    const st = this.state;
    if (st.features.corrupt) throw unsupported('the image is marked corrupt: it must not be written to');
    if (st.readOnly) throw usage('the image is open read-only');
    this.refuseIfStopped();
    if (this.autoclearDone) return;
    await this.whole(async () => {
      if (this.autoclearDone) return;
      const keep = st.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW;
      const hasBitmaps = st.extensions.some((e) => e.kind === 'bitmaps');
      if (st.header.autoclearFeatures !== keep || hasBitmaps) {
        st.header.autoclearFeatures = keep;
        st.activeBitmaps = false;
        if (hasBitmaps) await dropBitmaps(st);
        else await writeHeader(st);
        st.features.bitmapsConsistent = false;
      }
      this.autoclearDone = true;
    });
  }

  /** After a failed metadata write or flush, nothing more is changed (src/engine/stopped.ts). */
  private refuseIfStopped(): void {
    const failure = poisoned(this.state);
    if (failure) throw stoppedError(failure);
  }
}
