/**
 * A BlockFile that fails chosen operations the way a failing disk does: the n-th write carrying a
 * given tag (an L2 update, a refcount block, the header…) or the n-th flush throws EIO or ENOSPC,
 * once or from then on. The failed write does not reach the file. For error-injection tests.
 */
import { ioError } from '../errors.js';
import type { BlockFile, WriteTag } from './block-file.js';

export type FaultCode = 'EIO' | 'ENOSPC';

export interface FaultRule {
  /** Which operation: writes with this tag (any write when 'write'), or flushes. */
  on: WriteTag | 'write' | 'flush';
  /** Fail the n-th matching operation (1 = the first). */
  nth: number;
  code: FaultCode;
  /** Keep failing every matching operation after the first failure (a full or dead disk). */
  sticky?: boolean;
}

export class FaultFile implements BlockFile {
  private seen = 0;
  private tripped = false;
  /** How many operations were failed. */
  failures = 0;

  /** `counter`: another FaultFile whose count this one shares (an image and its data file). */
  constructor(
    private readonly inner: BlockFile,
    private readonly rule: FaultRule,
    private readonly counter?: FaultFile,
  ) {}

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }

  readInto(offset: number, target: Uint8Array): Promise<number> {
    return this.inner.readInto(offset, target);
  }

  async write(offset: number, data: Uint8Array, tag: WriteTag = 'data'): Promise<void> {
    if (this.rule.on === 'write' || this.rule.on === tag) this.maybeFail(`write of ${data.byteLength} bytes at 0x${offset.toString(16)} (${tag})`, offset);
    await this.inner.write(offset, data, tag);
  }

  async flush(): Promise<void> {
    if (this.rule.on === 'flush') this.maybeFail('flush', undefined);
    await this.inner.flush();
  }

  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** True once the rule has fired. */
  get fired(): boolean {
    return this.tripped;
  }

  private maybeFail(what: string, offset: number | undefined): void {
    if (this.counter) return this.counter.maybeFail(what, offset);
    this.seen++;
    if (this.seen === this.rule.nth || (this.tripped && this.rule.sticky)) {
      this.tripped = true;
      this.failures++;
      const cause = Object.assign(new Error(`${this.rule.code} (injected)`), { code: this.rule.code });
      throw ioError(`${what} failed: ${this.rule.code} (injected)`, offset === undefined ? { cause } : { offset, cause });
    }
  }
}
