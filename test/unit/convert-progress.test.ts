/**
 * `qcow2 convert -p`: qemu-img's progress line, redrawn in place with \r, on a terminal only; and
 * nothing at all when stdout is not a terminal or with -q.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';

let dir = '';
let input = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-progress-'));
  input = join(dir, 'in.raw');
  const data = new Uint8Array(16 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4096) data[i] = 1 + ((i >> 12) % 250);
  await writeFile(input, data);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function convert(args: string[], isTTY: boolean): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await run(['convert', ...args, '-f', 'raw', '-O', 'qcow2', input, join(dir, `out-${Math.random()}.qcow2`)], {
    stdout: (t) => (out += t),
    stderr: (t) => (out += t),
    isTTY,
  });
  return { code, out };
}

describe('convert -p', () => {
  it('draws rising percentages in place on a terminal and ends at 100% with a newline', async () => {
    const r = await convert(['-p'], true);
    expect(r.code).toBe(0);
    const frames = r.out.split('\r');
    expect(frames.at(-1)).toBe('\n');
    const percents = frames.slice(0, -1).map((f) => {
      expect(f).toMatch(/^ {4}\(\d+\.\d\d\/100%\)$/);
      return Number(/\((\d+\.\d\d)/.exec(f)![1]);
    });
    expect(percents.length).toBeGreaterThan(2);
    expect(percents.at(-1)).toBe(100);
    for (let i = 1; i < percents.length; i++) expect(percents[i]!).toBeGreaterThan(percents[i - 1]!);
  });

  it('prints nothing when stdout is not a terminal', async () => {
    expect(await convert(['-p'], false)).toEqual({ code: 0, out: '' });
  });

  it('prints nothing with -q, nor without -p', async () => {
    expect(await convert(['-p', '-q'], true)).toEqual({ code: 0, out: '' });
    expect(await convert([], true)).toEqual({ code: 0, out: '' });
  });
});
