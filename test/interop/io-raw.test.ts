/**
 * `qcow2 io -f raw` against `qemu-io -f raw`: the same random scripts of write (-P, -z, -z -u),
 * discard, flush and read -P (a pattern the model says is there) on two copies of one raw file leave
 * both files byte-identical to a plain byte-array model, with the same exit status and the same
 * output (timings aside). File sizes are 1-4 MiB, sometimes not a multiple of 512 (qemu's raw
 * virtual size is then rounded up), and some requests run past the end (EIO, exit status 1).
 */
import { execa } from 'execa';
import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSizeValue } from '../../src/cli/io/parse.js';
import { qcow2 } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let dir: string;

beforeAll(async () => {
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-io-raw-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function qemuIo(file: string, commands: string[], extra: string[] = []): Promise<RunResult> {
  const r = await execa('qemu-io', ['-f', 'raw', ...extra, ...commands.flatMap((c) => ['-c', c]), file], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function ourIo(file: string, commands: string[], extra: string[] = []): Promise<RunResult> {
  const r = await qcow2(['io', '-f', 'raw', ...extra, ...commands.flatMap((c) => ['-c', c]), file]);
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The statistics line carries timings; keep what is deterministic ("64 KiB, 1 ops;"). */
function normalize(stdout: string): string {
  return stdout.replace(/^(.*, \d+ ops; ).*$/gm, '$1<timing>');
}

// ---------------------------------------------------------------------------------------------
// The model: the file's bytes and length, with qemu's raw semantics.

class Model {
  readonly bytes: Uint8Array;
  /** The virtual size: the file size rounded up to 512, fixed while requests stay inside it. */
  readonly size: number;

  constructor(
    initial: Uint8Array,
    public length: number,
  ) {
    this.size = Math.ceil(initial.byteLength / 512) * 512;
    this.bytes = new Uint8Array(this.size);
    this.bytes.set(initial);
  }

  inRange(offset: number, length: number): boolean {
    return offset <= this.size && this.size - offset >= length;
  }

  /** Data and non-unmapping zero writes extend the file. */
  fill(offset: number, length: number, value: number): void {
    this.bytes.fill(value, offset, offset + length);
    if (length > 0) this.length = Math.max(this.length, offset + length);
  }

  /** Discard and `write -z -u` punch holes: zeros, and never past the end of the file. */
  punch(offset: number, length: number): void {
    this.bytes.fill(0, offset, Math.min(offset + length, this.length));
  }

  /** The longest run of one byte value starting at `offset`, at most `max` bytes (≥ 1). */
  uniformRun(offset: number, max: number): number {
    const value = this.bytes[offset];
    let n = 1;
    while (n < max && this.bytes[offset + n] === value) n++;
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// Scripts: abstract commands, rendered to qemu-io syntax against the model as they go.

type Align = 1 | 512 | 4096 | 65536;
interface Place {
  /** Where the request starts: anywhere, near the start, or near the end (where EOF lies). */
  from: 'any' | 'start' | 'end';
  at: number; // in [0, 1), for 'any'
  delta: number; // bytes from the start or back from the end
  align: Align;
  length: number; // before alignment
  pastEnd: boolean; // make the request cross the virtual size
}
type Abstract =
  | { kind: 'write'; place: Place; how: 'default' | 'pattern' | 'zeroes' | 'unmap'; pattern: number; quiet: boolean; alias: boolean }
  | { kind: 'discard'; place: Place; quiet: boolean; alias: boolean }
  | { kind: 'flush'; alias: boolean }
  | { kind: 'read'; place: Place; verbose: boolean; quiet: boolean; alias: boolean };

const placeArb: fc.Arbitrary<Place> = fc.record({
  from: fc.constantFrom<Place['from']>('any', 'any', 'start', 'end'),
  at: fc.integer({ min: 0, max: 999_999 }).map((n) => n / 1_000_000),
  delta: fc.oneof(fc.integer({ min: 0, max: 1024 }), fc.integer({ min: 0, max: 128 * KiB })),
  align: fc.constantFrom<Align>(1, 512, 4096, 65536),
  length: fc.oneof(fc.integer({ min: 0, max: 4 * KiB }), fc.integer({ min: 0, max: 256 * KiB })),
  pastEnd: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

const abstractArb: fc.Arbitrary<Abstract> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), place: placeArb, how: fc.constantFrom('default' as const, 'pattern' as const, 'pattern' as const, 'zeroes' as const, 'unmap' as const), pattern: fc.integer({ min: 0, max: 255 }), quiet: fc.boolean(), alias: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('discard' as const), place: placeArb, quiet: fc.boolean(), alias: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const), alias: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), place: placeArb, verbose: fc.integer({ min: 0, max: 4 }).map((n) => n === 0), quiet: fc.boolean(), alias: fc.boolean() }) },
);

const scenarioArb = fc.record({
  size: fc.oneof(
    fc.integer({ min: 1, max: 4 }).map((n) => n * MiB),
    fc.integer({ min: MiB, max: 4 * MiB }), // usually not a multiple of 512
  ),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  commands: fc.array(abstractArb, { minLength: 1, maxLength: 12 }),
  /** Picks how each number is spelled. */
  spelling: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
});

/** Deterministic initial content: runs of random bytes and of zeros. */
function initialContent(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size);
  let s = seed;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  for (let at = 0; at < size; ) {
    const run = 1 + (next() % (64 * KiB));
    const kind = next() % 3;
    for (let i = at; i < Math.min(size, at + run); i++) data[i] = kind === 0 ? 0 : kind === 1 ? next() & 0xff : 0x5a;
    at += run;
  }
  return data;
}

/** A size in one of qemu's spellings: decimal, hex, a binary suffix (also fractional), or 'b'. */
function spell(value: number, choice: number): string {
  const forms = [String(value), `0x${value.toString(16)}`, `${value}b`];
  if (value > 0 && value % 512 === 0) forms.push(`${value / KiB}k`, `${value / KiB}K`); // e.g. 1.5k
  if (value > 0 && value % (64 * KiB) === 0) forms.push(`${value / MiB}M`);
  if (value >= 2 * KiB && value % KiB !== 0) forms.push(`${value}B`);
  return forms[choice % forms.length] as string;
}

function place(p: Place, model: Model): [number, number] {
  const alignDown = (n: number) => Math.floor(n / p.align) * p.align;
  const start = p.from === 'any' ? Math.floor(p.at * model.size) : p.from === 'start' ? p.delta : model.size - p.delta;
  const offset = alignDown(Math.min(model.size, Math.max(0, start)));
  let length = p.align === 1 ? p.length : alignDown(p.length);
  if (p.pastEnd) length = model.size - offset + 1 + (p.length % 4096);
  else length = Math.min(length, model.size - offset);
  return [offset, length];
}

/** Renders the script and applies it to the model; returns the commands and whether any fails. */
function render(commands: Abstract[], spelling: number[], model: Model): { script: string[]; fails: boolean } {
  const script: string[] = [];
  let fails = false;
  let k = 0;
  const num = (n: number) => spell(n, spelling[k++ % spelling.length] as number);
  for (const c of commands) {
    if (c.kind === 'flush') {
      script.push(c.alias ? 'f' : 'flush');
      continue;
    }
    let [offset, length] = place(c.place, model);
    const q = c.quiet ? '-q ' : '';
    const ok = model.inRange(offset, length);
    if (!ok) fails = true;
    if (c.kind === 'write') {
      const name = c.alias ? 'w' : 'write';
      if (c.how === 'default') {
        script.push(`${name} ${q}${num(offset)} ${num(length)}`);
        if (ok) model.fill(offset, length, 0xcd);
      } else if (c.how === 'pattern') {
        script.push(`${name} ${q}-P ${c.pattern % 2 ? `0x${c.pattern.toString(16)}` : c.pattern} ${num(offset)} ${num(length)}`);
        if (ok) model.fill(offset, length, c.pattern);
      } else if (c.how === 'zeroes') {
        script.push(`${name} -z ${q}${num(offset)} ${num(length)}`);
        if (ok) model.fill(offset, length, 0);
      } else {
        script.push(`${name} ${q}-zu ${num(offset)} ${num(length)}`);
        if (ok) model.punch(offset, length);
      }
    } else if (c.kind === 'discard') {
      script.push(`${c.alias ? 'd' : 'discard'} ${q}${num(offset)} ${num(length)}`);
      if (ok) model.punch(offset, length);
    } else {
      const name = c.alias ? 'r' : 'read';
      if (ok && offset < model.size && length > 0) length = model.uniformRun(offset, length);
      if (c.verbose && ok) length = Math.min(length, 300);
      const pattern = ok && offset < model.size ? (model.bytes[offset] as number) : 0;
      script.push(`${name} ${q}${c.verbose ? '-v ' : ''}-P ${pattern} ${num(offset)} ${num(length)}`);
    }
  }
  return { script, fails };
}

describe('qcow2 io -f raw matches qemu-io -f raw', () => {
  it('random scripts leave identical files, equal to the model, with the same output and status', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ size, seed, commands, spelling }) => {
        const initial = initialContent(size, seed);
        const model = new Model(initial, size);
        const { script, fails } = render(commands, spelling, model);
        const theirsFile = join(dir, `theirs-${run}.raw`);
        const oursFile = join(dir, `ours-${run}.raw`);
        run++;
        await writeFile(theirsFile, initial);
        await writeFile(oursFile, initial);
        const theirs = await qemuIo(theirsFile, script);
        const ours = await ourIo(oursFile, script);
        const context = `script:\n  ${script.join('\n  ')}\nqemu-io stdout:\n${theirs.stdout}\nqemu-io stderr:\n${theirs.stderr}\nqcow2 io stderr:\n${ours.stderr}`;
        expect(theirs.stderr, context).toBe('');
        expect(ours.stderr, context).toBe('');
        expect(normalize(ours.stdout), context).toBe(normalize(theirs.stdout));
        expect(ours.exitCode, context).toBe(theirs.exitCode);
        expect(theirs.exitCode, context).toBe(fails ? 1 : 0);
        const theirsBytes = new Uint8Array(await readFile(theirsFile));
        const oursBytes = new Uint8Array(await readFile(oursFile));
        const expected = model.bytes.subarray(0, model.length);
        expect(theirsBytes.byteLength, context).toBe(model.length);
        expect(oursBytes.byteLength, context).toBe(model.length);
        expect(Buffer.compare(theirsBytes, expected), `qemu-io differs from the model\n${context}`).toBe(0);
        expect(Buffer.compare(oursBytes, expected), `qcow2 io differs from the model\n${context}`).toBe(0);
        await rm(theirsFile);
        await rm(oursFile);
      }),
      { numRuns: 25, endOnFailure: true },
    );
  }, 300_000);

  it('a failing read -P: exit status 1 and the same verification line as qemu-io', async () => {
    const script = ['write -P 0x55 0 4k', 'read -P 0x66 0 4k', 'read -q -P 0x55 100 100', 'read -P 0x55 -s 1k -l 2k 2k 4k', 'read -P 0 -l 2 4095 4', 'read -q -P 0 -s 1 4095 4'];
    const files = [join(dir, 'pattern-theirs.raw'), join(dir, 'pattern-ours.raw')] as const;
    for (const f of files) await writeFile(f, new Uint8Array(MiB));
    const theirs = await qemuIo(files[0], script);
    const ours = await ourIo(files[1], script);
    expect(theirs.exitCode).toBe(1);
    expect(ours.exitCode).toBe(1);
    expect(theirs.stdout).toContain('Pattern verification failed at offset 0, 4096 bytes\n');
    expect(ours.stdout).toContain('Pattern verification failed at offset 0, 4096 bytes\n');
    expect(ours.stdout).toContain('Pattern verification failed at offset 3072, 2048 bytes\n');
    expect(ours.stdout).toContain('Pattern verification failed at offset 4095, 2 bytes\n');
    expect(normalize(ours.stdout)).toBe(normalize(theirs.stdout));
    expect(ours.stderr).toBe('');
  });

  it('read -v, -C, zero-length and out-of-range requests print what qemu-io prints', async () => {
    const script = [
      'write -P 0x41 0 40',
      'write -P 0x09 40 10',
      'write -P 122 50 5',
      'read -v 0 60',
      'read -v 1M 0',
      'read 0 0',
      'write -z 1M 0',
      'read 1M 1',
      'write 1048575 2',
      'discard 2M 0',
      'write -z -u 0 1',
      'read -q -v 0 3',
      'read -P 0 -v 4000 100',
    ];
    const files = [join(dir, 'v-theirs.raw'), join(dir, 'v-ours.raw')] as const;
    for (const f of files) await writeFile(f, new Uint8Array(MiB));
    const theirs = await qemuIo(files[0], script);
    const ours = await ourIo(files[1], script);
    expect(ours.exitCode).toBe(theirs.exitCode);
    expect(normalize(ours.stdout)).toBe(normalize(theirs.stdout));
    expect(ours.stdout).toContain('00000030:  09 09 7a 7a 7a 7a 7a 00 00 00 00 00  ..zzzzz.....\n');
    expect(ours.stdout).toContain('read failed: Input/output error\n');
    const machine = await ourIo(files[1], ['read -C 0 1']);
    expect(machine.stdout).toMatch(/^1,1,0:00:\d\d\.\d\d,\d+\.\d{3},\d+\.\d{3}$/);
  });

  it('a 1000-byte raw file: virtual size 1024, and which requests extend the file', async () => {
    const initial = initialContent(1000, 7).map((b) => b | 1); // no zero bytes
    const scripts = [
      ['write -z 1000 24'], // extends to 1024
      ['write -z -u 1000 24'], // does not extend
      ['discard 1000 24'], // does not extend
      ['write -z -u 900 124', 'read -P 0 900 124'],
      ['discard 990 34'],
      ['write -P 7 1010 4'], // extends to 1014, zeros in between
      ['read -P 0 1000 24', 'read -q 0 1024', 'read 0 1025', 'read 1024 0', 'read 1025 0'],
    ];
    for (const [i, script] of scripts.entries()) {
      const files = [join(dir, `odd-theirs-${i}.raw`), join(dir, `odd-ours-${i}.raw`)] as const;
      for (const f of files) await writeFile(f, initial);
      const theirs = await qemuIo(files[0], script);
      const ours = await ourIo(files[1], script);
      const context = script.join('; ');
      expect(ours.exitCode, context).toBe(theirs.exitCode);
      expect(normalize(ours.stdout), context).toBe(normalize(theirs.stdout));
      expect(Buffer.compare(await readFile(files[1]), await readFile(files[0])), context).toBe(0);
    }
  });

  it('-r: writes and discards fail with "Block node is read-only", the file is untouched', async () => {
    const script = ['write 0 1', 'write -z 0 1', 'discard 0 1', 'flush', 'read -q -P 7 0 1'];
    const files = [join(dir, 'ro-theirs.raw'), join(dir, 'ro-ours.raw')] as const;
    for (const f of files) await writeFile(f, new Uint8Array(4096).fill(7));
    const theirs = await qemuIo(files[0], script, ['-r']);
    const ours = await ourIo(files[1], script, ['-r']);
    expect(theirs.exitCode).toBe(1);
    expect(ours.exitCode).toBe(1);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(theirs.stderr.match(/Block node is read-only/g)).toHaveLength(3);
    expect(ours.stderr.match(/Block node is read-only/g)).toHaveLength(3);
    expect(Buffer.compare(await readFile(files[1]), new Uint8Array(4096).fill(7))).toBe(0);
  });

  it('the command line: format probing, and bad commands refused before anything runs', async () => {
    const file = join(dir, 'cli.raw');
    await writeFile(file, new Uint8Array(64 * KiB));
    const probed = await qcow2(['io', '-c', 'write -q -P 3 0 1k', '-c', 'read -P 3 0 1k', file]);
    expect(probed.exitCode).toBe(0);
    expect(probed.stdout).toMatch(/^read 1024\/1024 bytes at offset 0\n1 KiB, 1 ops; /);
    const bad = await qcow2(['io', '-f', 'raw', '-c', 'write -P 9 0 1k', '-c', 'read 0 1x', file]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toBe(`qcow2 io: usage: -c 'read 0 1x': Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- 1x`);
    expect((await readFile(file))[0]).toBe(3); // the write before it did not run
    const unknown = await qcow2(['io', '-f', 'raw', '-c', 'bogus', file]);
    expect(unknown.stderr).toBe(`qcow2 io: usage: -c 'bogus': command "bogus" not found`);
    expect((await qcow2(['io', '-f', 'vmdk', '-c', 'flush', file])).stderr).toMatch(/-f must be 'raw' or 'qcow2'/);
    expect((await qcow2(['io', '-f', 'raw', file])).stderr).toMatch(/give the commands with -c/);
    expect((await qcow2(['io', '-c', 'flush', join(dir, 'missing.raw')])).stderr).toMatch(/^qcow2 io: io: cannot open .*ENOENT/);
  });

  it('write -c on raw fails like qemu-io (Operation not supported)', async () => {
    const files = [join(dir, 'c-theirs.raw'), join(dir, 'c-ours.raw')] as const;
    for (const f of files) await writeFile(f, new Uint8Array(MiB));
    const script = ['write -c 0 64k', 'write -c 2M 512', 'read -q -P 0 0 64k'];
    const theirs = await qemuIo(files[0], script);
    const ours = await ourIo(files[1], script);
    expect(theirs.stdout).toBe('write failed: Operation not supported\nwrite failed: Input/output error');
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.exitCode).toBe(1);
    expect(theirs.exitCode).toBe(1);
  });

  it('sizes are read as qemu-io reads them', async () => {
    // One qemu-io run reads every token as an offset with length 0 and prints the offset (or why not).
    const fixedTokens = ['0', '010', '+5', '1b', '1B', '1k', '1K', '0.5k', '1.5k', '1.k', '1.0', '1.3k', '0.7k', '0.9999999k', '0x10', '0X1e', '0x1b', '1.5', '.5k', '1e3', '1kk', '0x', '0x1.8', '00x10', '1.5b', '1.0b', '0.00048828125k', '0.000244140625k', '1m', '2M', '8E', '99999999999999999999', '99999999999999999999k', 'k', '1.99999999999999999999k', '0.99999999999999999999k'];
    const generated = fc.sample(
      fc.tuple(
        fc.integer({ min: 0, max: 4096 }),
        fc.constantFrom('', '.5', '.25', '.3', '.', '.0', '.125'),
        fc.constantFrom('', 'b', 'B', 'k', 'K', 'm', 'x', 'e3'),
        fc.boolean(),
      ).map(([n, frac, unit, hex]) => (hex ? `0x${n.toString(16)}` : `${n}${frac}${unit}`)),
      { numRuns: 60, seed: 42 },
    );
    const tokens = [...fixedTokens, ...generated];
    const file = join(dir, 'sizes.raw');
    await writeFile(file, new Uint8Array(4 * MiB));
    const theirs = await qemuIo(file, tokens.map((t) => `read ${t} 0`));
    const lines = theirs.stdout.split('\n').filter((l) => l !== '' && !/ ops; /.test(l));
    expect(lines).toHaveLength(tokens.length);
    tokens.forEach((token, i) => {
      const line = lines[i] as string;
      const ours = parseSizeValue(token);
      const offset = /^read 0\/0 bytes at offset (\d+)$/.exec(line)?.[1];
      if (offset !== undefined) {
        expect(ours, token).toBe(Number(offset));
      } else if (line === 'read failed: Input/output error') {
        expect(typeof ours === 'number' && ours > 4 * MiB, token).toBe(true);
      } else if (line === `Parsing error: argument too large -- ${token}`) {
        expect(ours, token).toBe('too-large');
      } else {
        expect(line, token).toBe(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${token}`);
        expect(ours, token).toBe('invalid');
      }
    });
  });
});
