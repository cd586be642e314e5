/**
 * A raw image as a BlockDevice: guest offset = file offset. Used for `-f raw` and for raw backing
 * files.
 *
 * Like qemu's raw driver over a file, the virtual size is the file size rounded up to a multiple of
 * 512 (qemu-img info calls a 1000-byte raw file 1 KiB), and the bytes between the end of the file
 * and the virtual size read as zeros. Writing data or (non-unmapping) zeroes past the end of the
 * file extends it; discard and unmapping zero writes never extend it.
 *
 * As in qemu's file driver: discard and unmapping zero writes punch holes (fallocate PUNCH_HOLE |
 * KEEP_SIZE, through BlockFile.punchHole), non-unmapping zero writes zero the range (ZERO_RANGE,
 * through BlockFile.zeroRange). Where the file system does neither, the file writes zeros instead
 * (see the file's `capabilities`), which reads back the same.
 */
import { readOnlyError, unsupported, usage } from '../errors.js';
import type { BlockFile } from '../io/block-file.js';
import { driving, type FileDriving, NodeFile } from '../io/node-file.js';
import { chainStatus } from './chain.js';
import { checkRequest } from './request.js';
import type { BlockDevice, DeviceCapabilities, Extent, StatusExtent, WriteOptions, WriteZeroesOptions } from './types.js';

const SECTOR = 512;

export class RawDevice implements BlockDevice {
  private constructor(
    private readonly file: BlockFile,
    private fileSize: number,
  ) {}

  static async open(path: string, opts: { readOnly?: boolean } & FileDriving = {}): Promise<RawDevice> {
    const file = await NodeFile.open(path, { readOnly: opts.readOnly ?? false, ...driving(opts) });
    try {
      return await RawDevice.over(file);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** A raw device over an already open file (which the device then owns: close() closes it). */
  static async over(file: BlockFile): Promise<RawDevice> {
    return new RawDevice(file, await file.size());
  }

  get virtualSize(): number {
    return Math.ceil(this.fileSize / SECTOR) * SECTOR;
  }

  get readOnly(): boolean {
    return this.file.readOnly;
  }

  readonly format = 'raw';
  /** A raw file has no layer below it. */
  readonly backing = undefined;

  get capabilities(): DeviceCapabilities {
    const fs = this.file.capabilities;
    return { discard: fs.punchHole, zeroUnmap: fs.punchHole, fastZero: fs.zeroRange, compressedWrites: false, snapshots: false };
  }

  async blockStatus(offset: number, length: number): Promise<StatusExtent[]> {
    checkRequest('block status', offset, length, this.virtualSize);
    return chainStatus(this, offset, length);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    await this.readInto(offset, buf);
    return buf;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    const length = target.byteLength;
    checkRequest('read', offset, length, this.virtualSize);
    if (length === 0) return;
    const inFile = offset < this.fileSize ? Math.min(length, this.fileSize - offset) : 0;
    const got = inFile > 0 ? await this.file.readInto(offset, target.subarray(0, inFile)) : 0;
    if (got < length) target.fill(0, got);
  }

  async write(offset: number, data: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    this.checkWritable();
    checkRequest('write', offset, data.byteLength, this.virtualSize, { mayExtend: true });
    if (data.byteLength === 0) return;
    await this.file.write(offset, data, 'data');
    this.fileSize = Math.max(this.fileSize, offset + data.byteLength);
    if (opts.fua) await this.file.flush();
  }

  async writeZeroes(offset: number, length: number, opts: WriteZeroesOptions = {}): Promise<void> {
    this.checkWritable();
    checkRequest('write zeroes', offset, length, this.virtualSize, { mayExtend: true });
    if (opts.fast && !(opts.unmap ? this.file.capabilities.punchHole : this.file.capabilities.zeroRange)) {
      throw unsupported('raw: the file system cannot zero this range without writing zeros');
    }
    if (opts.unmap) await this.punch(offset, length);
    else if (length > 0) {
      await this.file.zeroRange(offset, length, 'data');
      this.fileSize = Math.max(this.fileSize, offset + length);
    }
    if (opts.fua) await this.file.flush();
  }

  async discard(offset: number, length: number, opts: WriteOptions = {}): Promise<void> {
    this.checkWritable();
    checkRequest('discard', offset, length, this.virtualSize, { mayExtend: true });
    await this.punch(offset, length);
    if (opts.fua) await this.file.flush();
  }

  async flush(): Promise<void> {
    await this.file.flush();
  }

  async resize(newSize: number): Promise<void> {
    this.checkWritable();
    if (!Number.isSafeInteger(newSize) || newSize < 0) throw usage(`raw: invalid size ${newSize}`);
    await this.file.truncate(newSize);
    this.fileSize = newSize;
  }

  async mapExtents(offset: number, length: number): Promise<Extent[]> {
    checkRequest('map', offset, length, this.virtualSize);
    return length === 0 ? [] : [{ start: offset, length, kind: 'data', hostOffset: offset, file: 'image' }];
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  /** Discard and unmapping zero writes: a hole punched in the part inside the file (never extends it). */
  private async punch(offset: number, length: number): Promise<void> {
    const end = Math.min(offset + length, this.fileSize);
    if (end > offset) await this.file.punchHole(offset, end - offset, 'data');
  }

  private checkWritable(): void {
    if (this.readOnly) throw readOnlyError('raw: the image is open read-only');
  }


}
