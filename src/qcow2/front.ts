/**
 * What both engines' devices do the same way around their own request paths: range checks, the
 * checks and autoclear handling before the first change, flush, snapshots and resize on the whole
 * image, and close (which clears a dirty bit lazy refcounts left, and reports an earlier failure).
 * Each engine supplies how a request gets the whole image to itself (`whole`) and what a flush
 * must first write back (`writeBackCaches`).
 */
import { chainStatus } from '../engine/chain.js';
import type { BitmapEdit, BlockDevice, DeviceCapabilities, Extent, PersistentBitmap, Qcow2Device, ResizeOptions, SnapshotInfo, StatusExtent, WriteOptions, WriteZeroesOptions } from '../engine/types.js';
import { checkRequest } from '../engine/request.js';
import { stoppedError } from '../engine/stopped.js';
import { readOnlyError, unsupported } from '../errors.js';
import { changeBackingFile } from './backing-file.js';
import { readPersistentBitmap } from './bitmap-read.js';
import { applyBitmapEdit } from './bitmap-edit.js';
import { beforeFirstChange } from './bitmaps.js';
import { checkResizable, loadBitmaps, markDirty, resizeBitmaps, storeBitmaps } from './dirty-bitmaps.js';
import { setDirtyBit, underDirtyBit } from './header.js';
import { resize } from './resize.js';
import { applySnapshot, checkedSnapshot, createSnapshot, deleteSnapshot, listSnapshots } from './snapshots.js';
import { closeAll } from '../io/block-file.js';
import { poisoned, type Qcow2State } from './state.js';
import { makeEmpty } from './zero-discard.js';

export abstract class Qcow2Front<S extends Qcow2State> implements Qcow2Device {
  readonly format = 'qcow2';
  private autoclearDone = false;

  constructor(readonly state: S) {}

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
  get encrypted(): boolean {
    return this.state.crypto !== undefined;
  }

  get path(): string | undefined {
    return this.state.paths.image;
  }
  get backingName(): string | undefined {
    return this.state.backingName;
  }
  get dataFile(): { name: string; path: string | undefined } | undefined {
    const stored = this.state.extensions.find((e) => e.kind === 'data-file');
    if (!this.state.dataFile || stored?.kind !== 'data-file') return undefined;
    return { name: stored.name, path: this.state.paths.dataFile };
  }

  hostRefcount(index: number): Promise<number> {
    return this.state.store.getRefcount(index);
  }

  /** Reads straight into `target` (the engine checks the request with checkRequest; engine/request.ts). */
  abstract readInto(offset: number, target: Uint8Array): Promise<void>;
  /** The engine's change paths, called after the checks (range, writability, first-write autoclear). */
  protected abstract writeData(offset: number, data: Uint8Array): Promise<void>;
  protected abstract zeroData(offset: number, length: number, opts: WriteZeroesOptions): Promise<void>;
  protected abstract discardData(offset: number, length: number): Promise<void>;
  protected abstract extents(offset: number, length: number): Promise<Extent[]>;
  abstract writeCompressed(offset: number, data: Uint8Array): Promise<void>;
  /** Runs `fn` with the whole image to itself (no request of this device in flight). */
  protected abstract whole<T>(fn: () => Promise<T>): Promise<T>;
  /** Writes cached metadata back before a flush. */
  protected abstract writeBackCaches(): Promise<void>;

  get capabilities(): DeviceCapabilities {
    const { header, features } = this.state;
    return {
      discard: true,
      zeroUnmap: header.version >= 3,
      fastZero: header.version >= 3 && !features.dataFileRaw,
      compressedWrites: !features.externalDataFile,
      snapshots: !features.externalDataFile,
    };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async write(offset: number, data: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    checkRequest('write', offset, data.byteLength, this.virtualSize);
    await this.beforeWrite(offset, data.byteLength);
    await this.writeData(offset, data);
    if (opts.fua) await this.flush();
  }

  async writeZeroes(offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
    checkRequest('write zeroes', offset, length, this.virtualSize);
    await this.beforeWrite(offset, length);
    await this.zeroData(offset, length, opts);
    if (opts.fua) await this.flush();
  }

  async discard(offset: number, length: number, opts: WriteOptions = {}): Promise<void> {
    checkRequest('discard', offset, length, this.virtualSize);
    await this.beforeWrite(offset, length);
    await this.discardData(offset, length);
    if (opts.fua) await this.flush();
  }

  async makeEmpty(): Promise<void> {
    // The whole disk may read differently now (through the backing file): every granule is dirty.
    await this.beforeWrite(0, this.virtualSize);
    await this.whole(() => makeEmpty(this.state));
  }

  async mapExtents(offset: number, length: number): Promise<Extent[]> {
    checkRequest('map', offset, length, this.virtualSize);
    return this.extents(offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<StatusExtent[]> {
    checkRequest('block status', offset, length, this.virtualSize);
    return chainStatus(this, offset, length);
  }

  async flush(): Promise<void> {
    if (this.state.readOnly) return;
    this.refuseIfStopped();
    await this.whole(async () => {
      await this.writeBackCaches();
      await this.state.dataFile?.flush();
      await this.state.file.flush();
    });
  }

  async resize(newSize: number, opts: ResizeOptions = {}): Promise<void> {
    await this.beforeWrite();
    await this.whole(async () => {
      const bitmaps = this.state.bitmaps;
      if (bitmaps) checkResizable(bitmaps);
      await resize(this.state, newSize, opts);
      if (bitmaps) resizeBitmaps(bitmaps, newSize);
    });
  }

  listSnapshots(): Promise<SnapshotInfo[]> {
    return this.whole(() => listSnapshots(this.state));
  }

  async createSnapshot(name: string): Promise<SnapshotInfo> {
    await this.beforeWrite();
    return this.whole(() => underDirtyBit(this.state, () => createSnapshot(this.state, name)));
  }

  async applySnapshot(idOrName: string): Promise<void> {
    // As QEMU: reverting would leave enabled bitmaps describing the wrong data.
    if (this.state.activeBitmaps) throw unsupported('Device has active dirty bitmaps');
    // A snapshot entry QEMU refuses to load is refused before the request runs: it fails the
    // operation (EINVAL in QEMU), it does not mark the image corrupt.
    await checkedSnapshot(this.state, idOrName);
    await this.beforeWrite();
    await this.whole(() => underDirtyBit(this.state, () => applySnapshot(this.state, idOrName)));
  }

  async deleteSnapshot(idOrName: string): Promise<void> {
    await checkedSnapshot(this.state, idOrName);
    await this.beforeWrite();
    await this.whole(() => underDirtyBit(this.state, () => deleteSnapshot(this.state, idOrName)));
  }

  /**
   * A persistent bitmap, for reading. On a writable device it is the bitmap kept in memory through
   * this device's writes (dirty-bitmaps.ts): the live bits.
   */
  readBitmap(name: string): Promise<PersistentBitmap> {
    return this.whole(async () => {
      if (!this.state.readOnly) await loadBitmaps(this.state);
      return readPersistentBitmap(this.state, name);
    });
  }

  async editBitmaps(edits: readonly BitmapEdit[]): Promise<void> {
    await this.beforeWrite();
    await this.whole(async () => {
      const st = this.state;
      st.bitmaps ??= { list: [], inUse: true, listChanged: false, removed: [] };
      for (const edit of edits) await applyBitmapEdit(st, st.bitmaps, edit);
    });
  }

  /**
   * The data and metadata written so far reach the disk before the header names another backing
   * file, and the header change is flushed. Unlike a write, this does not clear the autoclear
   * bits: the header change leaves persistent bitmaps true (QEMU keeps them too).
   */
  async changeBackingFile(name: string | undefined, format: string | undefined): Promise<void> {
    this.refuseChange();
    await this.flush();
    await this.whole(() => changeBackingFile(this.state, name, format));
    await this.flush();
  }

  /**
   * A change of the image's metadata as a whole (`qemu-img amend`: src/qcow2/amend.ts): what was
   * written before reaches the disk first, `fn` runs with the image to itself, and its changes are
   * flushed after it (also when it fails half way). Like changeBackingFile, this does not clear the
   * autoclear bits.
   */
  async changeMetadata<T>(fn: (st: S) => Promise<T>): Promise<T> {
    this.refuseChange();
    await this.flush();
    try {
      return await this.whole(() => fn(this.state));
    } finally {
      if (!poisoned(this.state)) await this.flush();
    }
  }

  /** Flushes and closes; the files are closed even when the flush fails (the failure is then thrown). */
  async close(): Promise<void> {
    const st = this.state;
    const failure = poisoned(st);
    try {
      if (!failure) {
        await this.flush();
        // The bitmaps kept through this device's changes are stored, in_use cleared.
        const bitmaps = st.bitmaps;
        if (bitmaps?.inUse && !st.features.corrupt) {
          await this.whole(() => storeBitmaps(st, bitmaps));
          await this.flush();
        }
        // Lazy refcounts left the image dirty: everything is on disk now, refcounts included.
        if (st.features.dirty && !st.readOnly && !st.keepDirty && !st.features.corrupt) await this.whole(() => setDirtyBit(st, false));
      }
    } finally {
      await this.closeFiles();
    }
    if (failure) throw stoppedError(failure);
  }

  /** Closes the backing chain, the data file and the image file: all of them, whatever fails. */
  protected async closeFiles(): Promise<void> {
    await closeAll([() => this.state.backing?.close(), () => this.state.dataFile?.close(), () => this.state.file.close(), async () => this.state.crypto?.destroy()]);
  }

  /**
   * Before a change: refuse on read-only, corrupt or stopped images; before the first one, keep or
   * drop the bitmaps and clear the autoclear bits we do not maintain (bitmaps.ts). A change of the
   * guest's bytes at [offset, offset + length) marks them dirty in the kept bitmaps.
   */
  protected async beforeWrite(offset = 0, length = 0): Promise<void> {
    const st = this.state;
    this.refuseChange();
    if (!this.autoclearDone) {
      await this.whole(async () => {
        if (this.autoclearDone) return;
        await beforeFirstChange(st);
        this.autoclearDone = true;
      });
    }
    if (st.bitmaps) markDirty(st.bitmaps, offset, length);
  }

  /** Any change is refused on read-only, corrupt or stopped images. */
  private refuseChange(): void {
    if (this.state.features.corrupt) throw unsupported('the image is marked corrupt: it must not be written to');
    if (this.state.readOnly) throw readOnlyError('the image is open read-only');
    this.refuseIfStopped();
  }

  /** After a failed metadata write or flush, nothing more is changed (src/engine/stopped.ts). */
  protected refuseIfStopped(): void {
    const failure = poisoned(this.state);
    if (failure) throw stoppedError(failure);
  }
}
