/**
 * The byte-array model: what the guest must see, kept as plain bytes and updated with QEMU's
 * semantics (discard and zero writes per qcow2 version, snapshots as whole copies).
 */
export interface ImageShape {
  version: 2 | 3;
  clusterSize: number;
  /** Guest bytes of the backing file (zeros past its end), when there is one. */
  backing: Uint8Array | undefined;
  dataFileRaw: boolean;
  externalDataFile: boolean;
  refcountBits: number;
}

export class Model {
  bytes: Uint8Array;
  readonly snapshots = new Map<string, Uint8Array>();
  nextSnapshot = 1;

  constructor(
    readonly shape: ImageShape,
    size: number,
  ) {
    this.bytes = new Uint8Array(size);
    if (shape.backing) this.bytes.set(shape.backing.subarray(0, size));
  }

  get size(): number {
    return this.bytes.byteLength;
  }

  write(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
  }

  zero(offset: number, length: number): void {
    this.bytes.fill(0, offset, offset + length);
  }

  /** Whole clusters only (and a complete final partial cluster); partial ones are ignored. */
  discard(offset: number, length: number): void {
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
  }

  snapshot(name: string): void {
    this.snapshots.set(name, this.bytes.slice());
  }

  apply(name: string): void {
    const saved = this.snapshots.get(name);
    if (saved) this.bytes = saved.slice();
  }
}
