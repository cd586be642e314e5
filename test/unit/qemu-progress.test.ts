/**
 * The progress line `qcow2 rebase -p` prints as qemu-img does (QemuProgress, src/cli/progress.ts):
 * positions are printed the way C's printf("%3.2f") prints them, ties to even included; the
 * oracle is the system's printf(1), not our own output. What qemu-img itself prints, step for
 * step, is compared in test/interop/rebase-parity.test.ts.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { QemuProgress } from '../../src/cli/progress.js';

function printed(positions: number[]): string {
  let out = '';
  const progress = new QemuProgress({ stdout: (t) => (out += t), stderr: () => {}, isTTY: false }, true, 0);
  for (const p of positions) progress.print(p, 0);
  return out;
}

describe('QemuProgress', () => {
  it('prints positions as printf %.2f does (exact ties to even)', async () => {
    const positions = [0.125, 0.375, 3.125, 12.375, 12.5, 33.333, 66.665, 99.995, 100 / 3, 87.5, 0.005];
    const floats = positions.map((p) => Math.fround(p));
    const { stdout } = await execa('printf', [floats.map(() => '    (%3.2f/100%%)\\r').join(''), ...floats.map((f) => f.toPrecision(17))]);
    expect(printed(positions)).toBe(stdout);
  });

  it('redraws only past the minimum step, at 0 and at 100, and ends with a newline', () => {
    let out = '';
    const progress = new QemuProgress({ stdout: (t) => (out += t), stderr: () => {}, isTTY: false }, true, 2);
    progress.print(0, 100);
    for (let i = 0; i < 4; i++) progress.print(1, 100);
    progress.print(100, 0);
    progress.end();
    expect(out).toBe('    (0.00/100%)\r    (3.00/100%)\r    (100.00/100%)\r\n');
  });

  it('prints nothing when not enabled (-q)', () => {
    let out = '';
    const progress = new QemuProgress({ stdout: (t) => (out += t), stderr: () => {}, isTTY: true }, false, 2);
    progress.print(0, 100);
    progress.print(100, 0);
    progress.end();
    expect(out).toBe('');
  });
});
