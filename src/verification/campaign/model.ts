/**
 * The byte-array model: what the guest must see, kept as plain bytes and updated with QEMU's
 * semantics (discard and zero writes per qcow2 version, snapshots as whole copies), and the
 * persistent bitmaps' dirty granules, one byte each (QEMU's block layer marks the whole range of
 * every write, zero write and discard request in every enabled bitmap, whether or not the request
 * changed anything or succeeded).
 */
export interface ImageShape {
  version: 2 | 3;
  clusterSize: number;
  /** Guest bytes of the backing file (zeros past its end), when there is one. */
  backing: Uint8Array | undefined;
  dataFileRaw: boolean;
  externalDataFile: boolean;
  refcountBits: number;
  /** The persistent bitmaps the image was made with (granularity as QEMU made them). */
  bitmaps: readonly BitmapShape[];
  /** A LUKS-encrypted image's passphrase; undefined: not encrypted. */
  passphrase?: string | undefined;
}

export interface BitmapShape {
  name: string;
  granularity: number;
  enabled: boolean;
}

export interface ModelBitmap extends BitmapShape {
  /** One byte per granule: 1 when dirty. */
  granules: Uint8Array;
}

export class Model {
  bytes: Uint8Array;
  readonly snapshots = new Map<string, Uint8Array>();
  nextSnapshot = 1;
  readonly bitmaps: ModelBitmap[] = [];
  nextBitmap = 1;

  constructor(
    readonly shape: ImageShape,
    size: number,
  ) {
    this.bytes = new Uint8Array(size);
    if (shape.backing) this.bytes.set(shape.backing.subarray(0, size));
    for (const b of shape.bitmaps) this.addBitmap(b.name, b.granularity, b.enabled);
  }

  get size(): number {
    return this.bytes.byteLength;
  }

  write(offset: number, data: Uint8Array): void {
    this.touch(offset, data.byteLength);
    this.bytes.set(data, offset);
  }

  zero(offset: number, length: number): void {
    this.touch(offset, length);
    this.bytes.fill(0, offset, offset + length);
  }

  /** A write request over [offset, offset + length), even a refused one: its granules become dirty in every enabled bitmap. */
  touch(offset: number, length: number): void {
    if (length <= 0) return;
    for (const b of this.bitmaps) {
      if (b.enabled) b.granules.fill(1, Math.floor(offset / b.granularity), Math.floor((offset + length - 1) / b.granularity) + 1);
    }
  }

  /** Whole clusters only (and a complete final partial cluster); partial ones are ignored. */
  discard(offset: number, length: number): void {
    this.touch(offset, length);
    const C = this.shape.clusterSize;
    const end = offset + length;
    const start = Math.ceil(offset / C) * C;
    let stop = Math.floor(end / C) * C;
    if (end === this.size && end > stop && offset <= stop) stop = end;
    for (let c = start; c < stop; c += C) {
      const n = Math.min(C, this.size - c);
      if (this.shape.version === 3 || !this.shape.backing) this.bytes.fill(0, c, c + n);
      else {
        const below = new Uint8Array(n);
        below.set(this.shape.backing.subarray(c, c + n));
        this.bytes.set(below, c);
      }
    }
  }

  /** Growing exposes zeros, never the backing file (QEMU zeroes the new area). */
  resize(newSize: number): void {
    const grown = new Uint8Array(newSize);
    grown.set(this.bytes);
    this.bytes = grown;
    for (const b of this.bitmaps) {
      const granules = new Uint8Array(Math.ceil(newSize / b.granularity));
      granules.set(b.granules);
      b.granules = granules;
    }
  }

  snapshot(name: string): void {
    this.snapshots.set(name, this.bytes.slice());
  }

  apply(name: string): void {
    const saved = this.snapshots.get(name);
    if (saved) this.bytes = saved.slice();
  }

  get hasEnabledBitmap(): boolean {
    return this.bitmaps.some((b) => b.enabled);
  }

  bitmap(name: string): ModelBitmap {
    const b = this.bitmaps.find((x) => x.name === name);
    if (!b) throw new Error(`the model has no bitmap '${name}'`);
    return b;
  }

  addBitmap(name: string, granularity: number, enabled: boolean): void {
    this.bitmaps.push({ name, granularity, enabled, granules: new Uint8Array(Math.ceil(this.size / granularity)) });
  }

  removeBitmap(name: string): void {
    this.bitmaps.splice(this.bitmaps.indexOf(this.bitmap(name)), 1);
  }

  /** The dirty guest ranges [start, end) of a bitmap, joined, in order, cut at the disk's end. */
  dirtyRanges(name: string): [number, number][] {
    const b = this.bitmap(name);
    const out: [number, number][] = [];
    b.granules.forEach((dirty, i) => {
      if (!dirty) return;
      const start = i * b.granularity;
      const end = Math.min(this.size, start + b.granularity);
      const last = out[out.length - 1];
      if (last && last[1] === start) last[1] = end;
      else out.push([start, end]);
    });
    return out;
  }
}
