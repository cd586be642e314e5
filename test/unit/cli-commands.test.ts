/**
 * One description of the subcommands (src/cli/commands.ts): README.md's table, `qcow2 help`,
 * `qcow2 COMMAND --help` and the synopsis in usage errors all come from it.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_DOCS, commandHelp, mainHelp, readmeTable, spliceReadmeTable, usageLine } from '../../src/cli/commands.js';
import type { CliContext } from '../../src/cli/context.js';
import { run } from '../../src/cli/main.js';
import { COMMANDS as SUBCOMMANDS } from '../../src/main.js';
import { REPO } from '../support/cli.js';

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), isTTY: false };
  const code = await run(argv, ctx, SUBCOMMANDS);
  return { code, stdout, stderr };
}

describe('README.md', () => {
  it("has the command table of src/cli/commands.ts (fix: npm run build && node scripts/gen-readme.mjs)", () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    expect(readme).toContain(readmeTable());
    expect(spliceReadmeTable(readme)).toBe(readme);
  });

  it('passes scripts/gen-readme.mjs --check (on the built module)', async () => {
    const r = await execa(process.execPath, [join(REPO, 'scripts', 'gen-readme.mjs'), '--check'], { cwd: REPO, reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('escapes | inside table cells', () => {
    expect(readmeTable()).toContain('`qcow2 info [-f FMT] [--output=human\\|json] [--backing-chain] [--object OBJ] [--image-opts] IMAGE`');
  });
});

describe('the subcommands', () => {
  it('are the ones described, in both directions', () => {
    expect(Object.keys(SUBCOMMANDS).sort()).toEqual(COMMAND_DOCS.map((c) => c.name).sort());
  });

  it('qcow2 help lists every command with its synopsis and summary', async () => {
    for (const argv of [['help'], ['--help'], ['-h']]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(mainHelp());
    }
    const help = mainHelp();
    for (const c of COMMAND_DOCS) expect(help).toContain(`\n  ${c.name} ${c.synopsis}\n`);
    expect(help).not.toContain('`');
    const none = await cli([]);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe(help);
  });

  it('an unknown command prints the list on stderr and fails', async () => {
    for (const argv of [['bogus'], ['help', 'bogus'], ['constructor']]) {
      const r = await cli(argv);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`qcow2: unknown command '${argv.at(-1)}'\n${mainHelp()}`);
    }
  });

  it('qcow2 COMMAND --help and qcow2 help COMMAND print its usage line', async () => {
    for (const c of COMMAND_DOCS) {
      for (const argv of [[c.name, '--help'], [c.name, '-h'], ['help', c.name]]) {
        const r = await cli(argv);
        expect(r.code, argv.join(' ')).toBe(0);
        expect(r.stdout).toBe(commandHelp(c.name));
        expect(r.stdout.startsWith(`usage: qcow2 ${c.name} ${c.synopsis}\n\n`)).toBe(true);
      }
    }
    expect(commandHelp('create')).toContain("'-o help' lists the options");
  });

  it('usage errors about the command line end with the synopsis, on one line', async () => {
    const cases: [string[], string][] = [
      [['info', 'a', 'b'], 'info: expected exactly one image, got 2'],
      [['map'], 'map: expected exactly one image, got 0'],
      [['compare', 'a'], 'compare: expected two images, got 1'],
      [['convert', 'a'], 'convert: expected an input and an output image, got 1 names'],
      [['snapshot', '-l'], 'snapshot: expected one image, got 0'],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(argv);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`qcow2 ${argv[0]}: usage: ${message}; usage: ${usageLine(argv[0] as string)}\n`);
    }
    const unknown = await cli(['check', '--bogus', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^qcow2 check: usage: check: Unknown option '--bogus'.*; usage: qcow2 check \[-r leaks\|all\] .* IMAGE\n$/);
  });
});
