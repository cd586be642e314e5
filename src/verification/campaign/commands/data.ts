/** Guest data commands: write, zero, discard, compressed write, read. */
import type fc from 'fast-check';
import { ensure, ensureRejects } from '../check.js';
import type { Model } from '../model.js';
import { onAll, patternBytes, sameBytes, type System } from '../system.js';

type Cmd = fc.AsyncCommand<Model, System>;

/** Positions are drawn as fractions so commands stay valid while shrinking and after resizes. */
function place(model: Model, at: number, len: number, maxLen: number): { offset: number; length: number } {
  const offset = Math.floor(at * model.size) % model.size;
  const length = Math.max(1, Math.min(model.size - offset, 1 + Math.floor(len * maxLen)));
  return { offset, length };
}

/**
 * Every lane reads [offset, offset + length) as the model has it. The read goes into a buffer
 * filled with a poison byte first: readInto must write every byte of its target (the servers
 * hand it buffers that are not zeroed).
 */
async function expectRange(model: Model, sys: System, offset: number, length: number): Promise<void> {
  for (const lane of sys.lanes) {
    const got = new Uint8Array(length).fill(0xa5);
    await lane.dev.readInto(offset, got);
    const at = sameBytes(got, model.bytes.subarray(offset, offset + length));
    ensure(at === -1, `${lane.engine.name} engine: guest byte ${offset + at} differs from the model`);
  }
}

export class WriteCommand implements Cmd {
  constructor(readonly at: number, readonly len: number, readonly seed: number, readonly compressible: boolean) {}
  check = () => true;
  async run(model: Model, sys: System): Promise<void> {
    const { offset, length } = place(model, this.at, this.len, model.shape.clusterSize * 3);
    const data = patternBytes(length, this.seed, this.compressible);
    await onAll(sys, 'a write', (d) => d.write(offset, data));
    model.write(offset, data);
    await expectRange(model, sys, offset, length);
  }
  toString = () => `write(${this.at.toFixed(4)}, ${this.len.toFixed(4)}, seed ${this.seed})`;
}

export class ZeroCommand implements Cmd {
  constructor(readonly at: number, readonly len: number, readonly unmap: boolean) {}
  check = () => true;
  async run(model: Model, sys: System): Promise<void> {
    const { offset, length } = place(model, this.at, this.len, model.shape.clusterSize * 4);
    await onAll(sys, 'a zero write', (d) => d.writeZeroes(offset, length, { unmap: this.unmap }));
    model.zero(offset, length);
    await expectRange(model, sys, offset, length);
  }
  toString = () => `zero(${this.at.toFixed(4)}, ${this.len.toFixed(4)}${this.unmap ? ', unmap' : ''})`;
}

export class DiscardCommand implements Cmd {
  constructor(readonly at: number, readonly len: number) {}
  check = () => true;
  async run(model: Model, sys: System): Promise<void> {
    const { offset, length } = place(model, this.at, this.len, model.shape.clusterSize * 4);
    await onAll(sys, 'a discard', (d) => d.discard(offset, length));
    model.discard(offset, length);
    await expectRange(model, sys, offset, length);
  }
  toString = () => `discard(${this.at.toFixed(4)}, ${this.len.toFixed(4)})`;
}

export class CompressedWriteCommand implements Cmd {
  constructor(readonly at: number, readonly seed: number, readonly compressible: boolean) {}
  check = (m: Readonly<Model>) => !m.shape.externalDataFile;
  async run(model: Model, sys: System): Promise<void> {
    const C = model.shape.clusterSize;
    const clusters = Math.ceil(model.size / C);
    const offset = (Math.floor(this.at * clusters) % clusters) * C;
    const length = Math.min(C, model.size - offset);
    const data = patternBytes(length, this.seed, this.compressible);
    // QEMU refuses compressed writes over clusters that have host storage; ask the image which.
    const occupied = await onAll(sys, 'mapping', async (d) =>
      (await d.mapExtents(offset, length)).some((e) => e.kind === 'compressed' || e.hostOffset !== undefined),
    );
    ensure(new Set(occupied).size === 1, `engines disagree on whether cluster 0x${offset.toString(16)} has storage: ${occupied.join(', ')}`);
    if (occupied[0]) {
      for (const lane of sys.lanes) {
        await ensureRejects(() => lane.dev.writeCompressed(offset, data), /already allocated/, `a compressed write over allocated storage (${lane.engine.name})`);
      }
      model.touch(offset, length);
      return;
    }
    await onAll(sys, 'a compressed write', (d) => d.writeCompressed(offset, data));
    model.write(offset, data);
    await expectRange(model, sys, offset, length);
  }
  toString = () => `writeCompressed(${this.at.toFixed(4)}, seed ${this.seed})`;
}

export class ReadCommand implements Cmd {
  constructor(readonly at: number, readonly len: number) {}
  check = () => true;
  async run(model: Model, sys: System): Promise<void> {
    const { offset, length } = place(model, this.at, this.len, model.shape.clusterSize * 8);
    await expectRange(model, sys, offset, length);
  }
  toString = () => `read(${this.at.toFixed(4)}, ${this.len.toFixed(4)})`;
}

export { expectRange };
