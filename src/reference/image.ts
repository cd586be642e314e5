/**
 * The reference engine: a qcow2 image with every operation written through, one cluster at a time.
 * Each public operation checks what it may do, then calls the module that does it.
 */
import type { BlockDevice, Extent, Qcow2Device, SnapshotInfo, WriteZeroesOptions } from '../engine/types.js';
import { stoppedError } from '../engine/stopped.js';
import { unsupported, usage } from '../errors.js';
import { AUTOCLEAR_DATA_FILE_RAW } from '../format/constants.js';
import { dropBitmaps } from './bitmaps.js';
import { writeCompressed } from './compressed-write.js';
import { mapExtents } from './extents.js';
import { readGuest } from './read.js';
import { resize } from './resize.js';
import { applySnapshot, createSnapshot, deleteSnapshot, readSnapshots, snapshotInfo } from './snapshots.js';
import { poisoned, type RefState, underDirtyBit, writeHeader } from './state.js';
import { writeGuest } from './write.js';
import { discard, writeZeroes } from './zero-discard.js';

export class ReferenceImage implements Qcow2Device {
  private autoclearDone = false;

  constructor(readonly state: RefState) {}

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
    this.checkRange(offset, length);
    return readGuest(this.state, offset, length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    target.set(await this.read(offset, target.byteLength));
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.byteLength);
    await this.beforeWrite();
    await writeGuest(this.state, offset, data);
  }

  async writeZeroes(offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
    this.checkRange(offset, length);
    await this.beforeWrite();
    await writeZeroes(this.state, offset, length, opts);
  }

  async discard(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    await this.beforeWrite();
    await discard(this.state, offset, length);
  }

  async writeCompressed(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.byteLength);
    await this.beforeWrite();
    await writeCompressed(this.state, offset, data);
  }

  async flush(): Promise<void> {
    if (this.state.readOnly) return;
    this.refuseIfStopped();
    await this.state.dataFile?.flush();
    await this.state.file.flush();
  }

  async resize(newSize: number): Promise<void> {
    await this.beforeWrite();
    await resize(this.state, newSize);
  }

  async mapExtents(offset: number, length: number): Promise<Extent[]> {
    this.checkRange(offset, length);
    return mapExtents(this.state, offset, length);
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    return (await readSnapshots(this.state)).map((e) => snapshotInfo(e, this.virtualSize));
  }

  async createSnapshot(name: string): Promise<SnapshotInfo> {
    await this.beforeWrite();
    return snapshotInfo(await underDirtyBit(this.state, () => createSnapshot(this.state, name)), this.virtualSize);
  }

  async applySnapshot(idOrName: string): Promise<void> {
    // As QEMU: reverting would leave enabled bitmaps describing the wrong data.
    if (this.state.activeBitmaps) throw unsupported('Device has active dirty bitmaps');
    await this.beforeWrite();
    await underDirtyBit(this.state, () => applySnapshot(this.state, idOrName));
  }

  async deleteSnapshot(idOrName: string): Promise<void> {
    await this.beforeWrite();
    await underDirtyBit(this.state, () => deleteSnapshot(this.state, idOrName));
  }

  async close(): Promise<void> {
    const failure = poisoned(this.state);
    if (!failure) await this.flush();
    await this.state.backing?.close();
    await this.state.dataFile?.close();
    await this.state.file.close();
    if (failure) throw stoppedError(failure);
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw usage(`invalid request: offset ${offset}, length ${length}`);
    }
    if (offset + length > this.virtualSize) {
      throw usage(`request at ${offset} of ${length} bytes is beyond the end of the disk (${this.virtualSize} bytes)`);
    }
  }

  /**
   * Before the first change: refuse on read-only or corrupt images; clear the autoclear bits we do
   * not maintain (bitmaps become stale; unknown ones must go), as the spec requires.
   */
  private async beforeWrite(): Promise<void> {
    const st = this.state;
    if (st.features.corrupt) throw unsupported('the image is marked corrupt: it must not be written to');
    if (st.readOnly) throw usage('the image is open read-only');
    this.refuseIfStopped();
    if (this.autoclearDone) return;
    const keep = st.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW;
    const hasBitmaps = st.extensions.some((e) => e.kind === 'bitmaps');
    if (st.header.autoclearFeatures !== keep || hasBitmaps) {
      st.header.autoclearFeatures = keep;
      st.activeBitmaps = false;
      if (hasBitmaps) {
        await dropBitmaps(st); // frees what the bitmaps owned only if they were consistent
      } else {
        await writeHeader(st);
        await st.file.flush();
      }
      st.features.bitmapsConsistent = false;
    }
    this.autoclearDone = true;
  }

  /** After a failed metadata write or flush, nothing more is changed (src/engine/stopped.ts). */
  private refuseIfStopped(): void {
    const failure = poisoned(this.state);
    if (failure) throw stoppedError(failure);
  }
}
