/**
 * The in-memory image a fuzz case runs on, behind a guard: a file opened read-only records every
 * attempt to change it (the oracle "nothing is written to an image opened read-only") before
 * refusing it with the typed error a read-only file gives, and every file records that it was
 * closed (the oracle "file handles are all closed").
 */
import { ioError, readOnlyError } from '../../errors.js';
import type { BlockFile } from '../../io/block-file.js';
import { describeChange, type FileChange, ForwardingFile } from '../../io/forwarding-file.js';
import { MemoryFile } from '../../io/memory-file.js';

/** The case's bytes as a read-only file, shared, not copied (the guard refuses changes before they reach it). */
export class SharedBytesFile implements BlockFile {
  readonly readOnly = true;
  readonly capabilities = { punchHole: false, zeroRange: false };

  constructor(private readonly bytes: Uint8Array) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.bytes.slice(Math.min(offset, this.bytes.byteLength), Math.min(offset + length, this.bytes.byteLength));
  }

  async readInto(offset: number, target: Uint8Array): Promise<number> {
    const end = Math.min(this.bytes.byteLength, offset + target.byteLength);
    if (offset >= end) return 0;
    target.set(this.bytes.subarray(offset, end));
    return end - offset;
  }

  async write(): Promise<void> {
    throw readOnlyError('fuzz: the file is open read-only');
  }

  async punchHole(): Promise<void> {
    throw readOnlyError('fuzz: the file is open read-only');
  }

  async zeroRange(): Promise<void> {
    throw readOnlyError('fuzz: the file is open read-only');
  }

  async truncate(): Promise<void> {
    throw readOnlyError('fuzz: the file is open read-only');
  }

  async size(): Promise<number> {
    return this.bytes.byteLength;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  snapshot(): Uint8Array {
    return this.bytes;
  }
}

/**
 * What the files of one case share: on memory every await settles as a microtask, so every so many
 * operations the guard gives the event loop a turn (the oracle's timer can then fire), and once the
 * case is abandoned every operation fails, which stops a runaway loop in the code under test.
 */
export interface CaseState {
  abandoned: boolean;
  ops: number;
}

const YIELD_EVERY = 256;

export class GuardFile extends ForwardingFile {
  closed = false;

  constructor(
    readonly memory: MemoryFile | SharedBytesFile,
    private readonly guarded: boolean,
    readonly role: string,
    private readonly violations: string[],
    private readonly state: CaseState,
    /** Runs when the file is closed (closes the placeholder the opener opened; keeps what was written). */
    private readonly onClose?: (file: GuardFile) => Promise<void>,
  ) {
    super(memory);
  }

  override get readOnly(): boolean {
    return this.guarded;
  }

  private async tick(): Promise<void> {
    if (this.state.abandoned) throw ioError('fuzz: the case was abandoned (it ran too long)');
    if (++this.state.ops % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
  }

  override async read(offset: number, length: number): Promise<Uint8Array> {
    await this.tick();
    return super.read(offset, length);
  }

  override async readInto(offset: number, target: Uint8Array): Promise<number> {
    await this.tick();
    return super.readInto(offset, target);
  }

  protected override async change(change: FileChange, apply: () => Promise<void>): Promise<void> {
    await this.tick();
    if (!this.guarded) return apply();
    this.violations.push(`${this.role}: ${describeChange(change)} on a file opened read-only`);
    throw readOnlyError('fuzz: the file is open read-only');
  }

  override async flush(): Promise<void> {
    await this.tick();
    return super.flush();
  }

  override async truncate(length: number): Promise<void> {
    await this.tick();
    if (!this.guarded) return super.truncate(length);
    this.violations.push(`${this.role}: truncate to ${length} bytes on a file opened read-only`);
    throw readOnlyError('fuzz: the file is open read-only');
  }

  override async close(): Promise<void> {
    this.closed = true;
    await this.onClose?.(this);
    await super.close();
  }
}
