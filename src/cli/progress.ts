/** qemu-img's progress line, `    (12.34/100%)`, redrawn in place; nothing when stdout is no terminal. */
import type { CliContext } from './context.js';

export class Progress {
  private last = -1;

  constructor(
    private readonly ctx: CliContext,
    private readonly enabled: boolean,
  ) {}

  update(done: number, total: number): void {
    if (!this.enabled || !this.ctx.isTTY) return;
    const percent = total === 0 ? 100 : Math.min(100, (done / total) * 100);
    const shown = Math.floor(percent * 100) / 100;
    // Chunks finish out of order; the line only ever moves forward.
    if (shown <= this.last) return;
    this.last = shown;
    this.ctx.stdout(`    (${shown.toFixed(2)}/100%)\r`);
  }

  finish(): void {
    if (!this.enabled || !this.ctx.isTTY) return;
    this.update(1, 1);
    this.ctx.stdout('\n');
  }
}

/**
 * qemu-img's own progress accounting (util/qemu-progress.c), for the commands whose progress
 * output is compared byte for byte with qemu-img's (`rebase -p`): printed whether or not stdout is
 * a terminal, in single-precision steps, redrawn when it moved more than `minSkip` points or
 * reached 0 or 100, and a newline at the end.
 */
export class QemuProgress {
  private current = 0;
  private lastPrint = 0;

  constructor(
    private readonly ctx: CliContext,
    private readonly enabled: boolean,
    private readonly minSkip: number,
  ) {}

  /** qemu_progress_print(delta, max): with max 0 the position is `delta`, else it moves by delta% of max. */
  print(delta: number, max: number): void {
    const f = Math.fround;
    let current = max === 0 ? f(delta) : f(this.current + f(f(f(delta) / 100) * max));
    if (current > 100) current = 100;
    this.current = current;
    const skip = f(this.minSkip);
    if (current > f(this.lastPrint + skip) || current < f(this.lastPrint - skip) || current === 0 || current === 100) {
      this.lastPrint = current;
      if (this.enabled) this.ctx.stdout(`    (${printf2(current)}/100%)\r`);
    }
  }

  /** qemu_progress_end(). */
  end(): void {
    if (this.enabled) this.ctx.stdout('\n');
  }
}

/** printf's `%.2f` of a float: as toFixed(2), but exact ties round to even as glibc does. */
function printf2(value: number): string {
  // A float's 24-bit mantissa times 100 is exact in a double.
  const scaled = value * 100;
  const floor = Math.floor(scaled);
  if (scaled - floor === 0.5 && floor % 2 === 0) return (floor / 100).toFixed(2);
  return value.toFixed(2);
}
