/**
 * The README's table of every qemu-img 7.2 command and option tells the truth about our parser:
 * each row's example is run; a `no` row must be refused as an unknown option, a `refused` row with a
 * typed `unsupported` error, and the others (`yes`, `ignored`) must be taken. What the taken options
 * do is each command's parity test against qemu-img; this test keeps the table from drifting.
 * The commands of the table are qemu-img's own list (`qemu-img --help`), so a command missing from
 * the table fails too.
 */
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2, REPO } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

interface Row {
  command: string;
  args: string[];
  state: string;
}

function tableRows(readme: string): Row[] {
  const start = readme.indexOf('### Every qemu-img 7.2 command and option');
  const rows: Row[] = [];
  for (const line of readme.slice(start).split('\n').slice(1)) {
    if (rows.length > 0 && !line.startsWith('|')) break;
    const m = /^\| (\w+) \| `([^`]+)` \| (\w+) \|/.exec(line);
    if (m) rows.push({ command: m[1]!, args: m[2]!.split(' '), state: m[3]! });
  }
  return rows;
}

/** What follows the options in each command's example (bench: one request only). */
const OPERANDS: Record<string, string[]> = {
  amend: ['p.qcow2'],
  bench: ['-c', '1', 'p.qcow2'],
  bitmap: ['p.qcow2', 'b'],
  check: ['p.qcow2'],
  commit: ['p.qcow2'],
  compare: ['p.qcow2', 'p.qcow2'],
  convert: ['p.qcow2', 'o.raw'],
  create: ['n.qcow2', '1M'],
  dd: ['if=p.qcow2', 'of=o.raw'],
  info: ['p.qcow2'],
  map: ['p.qcow2'],
  measure: ['p.qcow2'],
  rebase: ['p.qcow2'],
  resize: ['p.qcow2', '+1M'],
  snapshot: ['p.qcow2'],
};

const rows = tableRows(await readFile(join(REPO, 'README.md'), 'utf8'));
let dir = '';

beforeAll(async () => {
  await requireTool('qemu-img');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-feature-table-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('the README table of qemu-img commands and options', () => {
  it('lists every command qemu-img 7.2 has', async () => {
    const help = (await execa('qemu-img', ['--help'], { reject: false })).stdout;
    const syntax = help.slice(help.indexOf('Command syntax:'), help.indexOf('Command parameters:'));
    const theirs = [...syntax.matchAll(/^ {2}(\w+) /gm)].map((m) => m[1]).sort();
    expect(theirs.length).toBeGreaterThan(10);
    expect([...new Set(rows.map((r) => r.command))].sort()).toEqual(theirs);
  });

  for (const row of rows) {
    it(`${row.command} ${row.args.join(' ')}: ${row.state}`, async ({ expect }) => {
      const cwd = await mkdtemp(join(dir, 'row-'));
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', 'p.qcow2', '1M'], { cwd });
      const r = await qcow2([row.command, ...row.args, ...(OPERANDS[row.command] ?? [])], { cwd });
      const unknown = /Unknown option/.test(r.stderr);
      if (row.state === 'no') expect(unknown, r.stderr).toBe(true);
      else expect(unknown, r.stderr).toBe(false);
      if (row.state === 'refused') {
        expect(r.exitCode).toBe(1);
        expect(r.stderr).toMatch(/: unsupported: /);
      }
      expect(['yes', 'ignored', 'refused', 'no']).toContain(row.state);
    });
  }
});
