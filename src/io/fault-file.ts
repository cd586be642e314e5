/**
 * A BlockFile that fails chosen operations the way a failing disk does: the n-th write carrying a
 * given tag (an L2 update, a refcount block, the header…) or the n-th flush throws EIO or ENOSPC,
 * once or from then on. The failed write does not reach the file. Hole punches and zero ranges
 * count and fail as writes with their tag ('data' by default). For error-injection tests.
 */
import { ioError } from '../errors.js';
import type { BlockFile, WriteTag } from './block-file.js';
import { describeChange, type FileChange, ForwardingFile } from './forwarding-file.js';

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

export class FaultFile extends ForwardingFile {
  private seen = 0;
  private tripped = false;
  /** How many operations were failed. */
  failures = 0;

  /** `counter`: another FaultFile whose count this one shares (an image and its data file). */
  constructor(
    inner: BlockFile,
    private readonly rule: FaultRule,
    private readonly counter?: FaultFile,
  ) {
    super(inner);
  }

  protected override async change(c: FileChange, apply: () => Promise<void>): Promise<void> {
    if (this.rule.on === 'write' || this.rule.on === c.tag) this.maybeFail(describeChange(c), c.offset);
    await apply();
  }

  override async flush(): Promise<void> {
    if (this.rule.on === 'flush') this.maybeFail('flush', undefined);
    await this.inner.flush();
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
