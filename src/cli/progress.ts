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
