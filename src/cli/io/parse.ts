/**
 * qemu-io's command syntax (QEMU 7.2) for `qcow2 io`: read, write, discard, flush and their
 * one-letter aliases (r, w, d, f).
 *
 * What is mirrored from qemu-io, checked against qemu-io 7.2 by experiment:
 * - options are parsed like GNU getopt: clustered (`-qv`), attached (`-P0x55`) or separate option
 *   arguments, options after the positionals (`read 0 1k -q`), `--` ends the options, and so an
 *   argument like `-1` is an (invalid) option, never a negative number;
 * - sizes like qemu_strtosz(): decimal, `0x` hex, an optional suffix b/B k/K m/M g/G t/T p/P e/E
 *   (powers of 1024; hex with a suffix is accepted, qemu deprecates it), decimal fractions only with
 *   a suffix above bytes (`1.5k` = 1536, rounded half up to a byte; `1.0` = 1), no octal (`010` is
 *   ten), no exponent, no sign but `+`, at most INT64_MAX;
 * - a pattern (-P) like strtol(…, 0): decimal, 0x hex or 0 octal, 0 to 255;
 * - the same checks, in the same order, with the same messages as qemu-io's read_f/write_f/
 *   discard_f (length limit 2147483136, `-u requires -z`, sector alignment for `write -c`, …).
 *
 * Where we differ: a failing command is a usage Qcow2Error raised before anything runs (qemu-io
 * prints the message, runs the other commands and exits 1), words are split like a shell (quotes
 * group, backslash escapes; qemu-io splits on single spaces only), and options for features we do
 * not have (read/write -b, write -s, write -n) are 'unsupported' errors.
 */
import { type Qcow2Error, unsupported, usage } from '../../errors.js';
import { MAX_REQUEST_BYTES } from '../../limits.js';
import { cvtnum, qemuStrtol } from '../../units.js';

interface OpBase {
  /** The command as given, for messages. */
  command: string;
}

export interface ReadOp extends OpBase {
  kind: 'read';
  offset: number;
  length: number;
  /** `-P`: the byte every verified byte must equal. */
  pattern: number | undefined;
  /** `-s`/`-l`: the part of the read that is verified, relative to `offset` (default: all). */
  patternOffset: number;
  patternLength: number;
  /** `-q`: print nothing on success. */
  quiet: boolean;
  /** `-v`: hexdump the data. */
  verbose: boolean;
  /** `-C`: the machine-parsable statistics line. */
  machine: boolean;
}

export interface WriteOp extends OpBase {
  kind: 'write';
  offset: number;
  length: number;
  /** `-z` → zeroes (it wins over -c, as in qemu-io), `-c` → compressed, else data. */
  mode: 'data' | 'zeroes' | 'compressed';
  /** The fill byte for data and compressed writes (`-P`, default 0xcd). */
  pattern: number;
  /** `-u` (only with -z): the zeroed range may be deallocated. */
  unmap: boolean;
  /** `-f`: force unit access (we flush after the write). */
  fua: boolean;
  quiet: boolean;
  machine: boolean;
}

export interface DiscardOp extends OpBase {
  kind: 'discard';
  offset: number;
  length: number;
  quiet: boolean;
  machine: boolean;
}

export interface FlushOp extends OpBase {
  kind: 'flush';
}

export type IoOp = ReadOp | WriteOp | DiscardOp | FlushOp;

interface CommandSpec {
  name: 'read' | 'write' | 'discard' | 'flush';
  alias: string;
  argmin: number;
  /** -1: no maximum. */
  argmax: number;
  /** As qemu-io prints it in the usage line. */
  args: string;
  oneline: string;
}

const COMMANDS: CommandSpec[] = [
  {
    name: 'read',
    alias: 'r',
    argmin: 2,
    argmax: -1,
    args: '[-abCqv] [-P pattern [-s off] [-l len]] off len',
    oneline: 'reads a number of bytes at a specified offset',
  },
  {
    name: 'write',
    alias: 'w',
    argmin: 2,
    argmax: -1,
    args: '[-bcCfnquz] [-P pattern | -s source_file] off len',
    oneline: 'writes a number of bytes at a specified offset',
  },
  {
    name: 'discard',
    alias: 'd',
    argmin: 2,
    argmax: -1,
    args: '[-Cq] off len',
    oneline: 'discards a number of bytes at a specified offset',
  },
  { name: 'flush', alias: 'f', argmin: 0, argmax: 0, args: '', oneline: 'flush all in-core file state to disk' },
];

/** The other commands of qemu-io 7.2: valid there, refused here with a typed unsupported error. */
const OTHER_QEMU_IO_COMMANDS = new Set([
  'abort', 'aio_flush', 'aio_read', 'aio_write', 'alloc', 'break', 'close', 'help', 'info', 'length', 'l', 'map',
  'open', 'o', 'quit', 'q', 'readv', 'remove_break', 'reopen', 'resume', 'sigraise', 'sleep', 'truncate', 't',
  'wait_break', 'writev',
]);

/** Parses every `-c` command up front; the first bad one is a usage (or unsupported) error. */
export function parseScript(commands: readonly string[]): IoOp[] {
  const ops: IoOp[] = [];
  for (const line of commands) {
    const op = parseCommand(line);
    if (op) ops.push(op);
  }
  return ops;
}

/** One qemu-io command line; undefined for an empty line (qemu-io does nothing for it). */
export function parseCommand(line: string): IoOp | undefined {
  let words: string[];
  try {
    words = splitWords(line);
  } catch (err) {
    throw usage(`-c '${line}': ${(err as Error).message}`);
  }
  const [name, ...rest] = words;
  if (name === undefined) return undefined;
  const fail = (message: string): Qcow2Error => usage(`-c '${line}': ${message}`);
  const spec = COMMANDS.find((c) => c.name === name || c.alias === name);
  if (!spec) {
    if (OTHER_QEMU_IO_COMMANDS.has(name)) throw unsupported(`-c '${line}': qemu-io command "${name}" is not supported by qcow2 io`);
    throw fail(`command "${name}" not found`);
  }
  if (rest.length < spec.argmin || (spec.argmax !== -1 && rest.length > spec.argmax)) {
    const expected =
      spec.argmax === -1
        ? `at least ${spec.argmin}`
        : spec.argmin === spec.argmax
          ? `${spec.argmin}`
          : `between ${spec.argmin} and ${spec.argmax}`;
    throw fail(`bad argument count ${rest.length} to ${name}, expected ${expected} arguments`);
  }
  const ctx: Ctx = { line, name, spec, fail };
  switch (spec.name) {
    case 'read':
      return parseRead(rest, ctx);
    case 'write':
      return parseWrite(rest, ctx);
    case 'discard':
      return parseDiscard(rest, ctx);
    case 'flush':
      return { kind: 'flush', command: line };
  }
}

interface Ctx {
  line: string;
  /** The command name as typed (qemu-io uses it in messages). */
  name: string;
  spec: CommandSpec;
  fail: (message: string) => Qcow2Error;
}

function usageLine(spec: CommandSpec): string {
  return `usage: ${spec.name} ${spec.args} -- ${spec.oneline}`;
}

function parseRead(args: string[], ctx: Ctx): ReadOp {
  let machine = false;
  let quiet = false;
  let verbose = false;
  let vmstate = false;
  let pattern: number | undefined;
  let patternOffset: number | undefined;
  let patternLength: number | undefined;
  const positionals = getopt(args, 'bCl:pP:qs:v', ctx, (opt, arg) => {
    if (opt === 'b') vmstate = true;
    else if (opt === 'C') machine = true;
    else if (opt === 'l') patternLength = size(arg, ctx);
    else if (opt === 'P') pattern = patternByte(arg, ctx);
    else if (opt === 'q') quiet = true;
    else if (opt === 's') patternOffset = size(arg, ctx);
    else if (opt === 'v') verbose = true;
    // 'p' is ignored, as qemu-io does for backwards compatibility.
  });
  const [offset, length] = offsetAndLength(positionals, ctx);
  if (length > MAX_REQUEST_BYTES) throw ctx.fail(`length cannot exceed ${MAX_REQUEST_BYTES}, given ${positionals[1]}`);
  if (pattern === undefined && (patternOffset !== undefined || patternLength !== undefined)) throw ctx.fail(usageLine(ctx.spec));
  const from = patternOffset ?? 0;
  const count = patternLength ?? length - from;
  if (count < 0 || count + from > length) throw ctx.fail('pattern verification range exceeds end of read data');
  if (vmstate) {
    sectorAligned(offset, length, ctx);
    throw unsupported(`-c '${ctx.line}': read -b (VM state) is not supported by qcow2 io`);
  }
  return { kind: 'read', command: ctx.line, offset, length, pattern, patternOffset: from, patternLength: count, quiet, verbose, machine };
}

function parseWrite(args: string[], ctx: Ctx): WriteOp {
  let vmstate = false;
  let compressed = false;
  let machine = false;
  let fua = false;
  let noFallback = false;
  let patternGiven = false;
  let pattern = 0xcd;
  let quiet = false;
  let sourceFile = false;
  let unmap = false;
  let zeroes = false;
  const positionals = getopt(args, 'bcCfnpP:qs:uz', ctx, (opt, arg) => {
    if (opt === 'b') vmstate = true;
    else if (opt === 'c') compressed = true;
    else if (opt === 'C') machine = true;
    else if (opt === 'f') fua = true;
    else if (opt === 'n') noFallback = true;
    else if (opt === 'P') {
      patternGiven = true;
      pattern = patternByte(arg, ctx);
    } else if (opt === 'q') quiet = true;
    else if (opt === 's') sourceFile = true;
    else if (opt === 'u') unmap = true;
    else if (opt === 'z') zeroes = true;
  });
  if (positionals.length !== 2) throw ctx.fail(usageLine(ctx.spec));
  if (vmstate && zeroes) throw ctx.fail('-b and -z cannot be specified at the same time');
  if (fua && (vmstate || compressed)) throw ctx.fail('-f and -b or -c cannot be specified at the same time');
  if (noFallback && !zeroes) throw ctx.fail('-n requires -z to be specified');
  if (unmap && !zeroes) throw ctx.fail('-u requires -z to be specified');
  if (Number(zeroes) + Number(patternGiven) + Number(sourceFile) > 1) {
    throw ctx.fail('Only one of -z, -P, and -s can be specified at the same time');
  }
  const [offset, length] = offsetAndLength(positionals, ctx);
  if (length > MAX_REQUEST_BYTES && !noFallback) {
    throw ctx.fail(`length cannot exceed ${MAX_REQUEST_BYTES} without -n, given ${positionals[1]}`);
  }
  if (vmstate || compressed) sectorAligned(offset, length, ctx);
  const unsupportedFlag = vmstate ? '-b (VM state)' : sourceFile ? '-s (pattern file)' : noFallback ? '-n' : undefined;
  if (unsupportedFlag) throw unsupported(`-c '${ctx.line}': write ${unsupportedFlag} is not supported by qcow2 io`);
  const mode = zeroes ? 'zeroes' : compressed ? 'compressed' : 'data';
  return { kind: 'write', command: ctx.line, offset, length, mode, pattern, unmap, fua, quiet, machine };
}

function parseDiscard(args: string[], ctx: Ctx): DiscardOp {
  let machine = false;
  let quiet = false;
  const positionals = getopt(args, 'Cq', ctx, (opt) => {
    if (opt === 'C') machine = true;
    else if (opt === 'q') quiet = true;
  });
  const [offset, length] = offsetAndLength(positionals, ctx);
  if (length > MAX_REQUEST_BYTES) throw ctx.fail(`length cannot exceed ${MAX_REQUEST_BYTES}, given ${positionals[1]}`);
  return { kind: 'discard', command: ctx.line, offset, length, quiet, machine };
}

function offsetAndLength(positionals: string[], ctx: Ctx): [number, number] {
  const [offsetText, lengthText] = positionals;
  if (positionals.length !== 2 || offsetText === undefined || lengthText === undefined) throw ctx.fail(usageLine(ctx.spec));
  return [size(offsetText, ctx), size(lengthText, ctx)];
}

function sectorAligned(offset: number, length: number, ctx: Ctx): void {
  if (offset % 512 !== 0) throw ctx.fail(`${offset} is not a sector-aligned value for 'offset'`);
  if (length % 512 !== 0) throw ctx.fail(`${length} is not a sector-aligned value for 'count'`);
}

function size(text: string, ctx: Ctx): number {
  const result = parseSizeValue(text);
  if (result === 'invalid') throw ctx.fail(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${text}`);
  if (result === 'too-large') throw ctx.fail(`Parsing error: argument too large -- ${text}`);
  return result;
}

function patternByte(text: string, ctx: Ctx): number {
  const value = parsePatternValue(text);
  if (value === undefined) throw ctx.fail(`${text} is not a valid pattern byte`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Words and options

/**
 * Splits a command line into words like a POSIX shell does (without expansions): blanks separate
 * words, '…' quotes literally, "…" quotes with backslash escaping \ " $ ` and newline, and a
 * backslash outside quotes escapes the next character.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '"') {
      inWord = true;
      for (i++; ; i++) {
        if (i >= line.length) throw new Error('unterminated double quote');
        const c = line[i] as string;
        if (c === '"') break;
        const next = line[i + 1];
        if (c === '\\' && next !== undefined && '\\"$`\n'.includes(next)) {
          if (next !== '\n') word += next;
          i++;
        } else {
          word += c;
        }
      }
    } else if (ch === '\\') {
      const next = line[i + 1];
      if (next === undefined) throw new Error('trailing backslash');
      if (next !== '\n') {
        word += next;
        inWord = true;
      }
      i++;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * GNU getopt with argument permutation: options may come anywhere, `--` ends them, a lone `-` is a
 * positional. `spec` is getopt's optstring (a letter followed by ':' takes an argument). Each option
 * is handed to `onOption` as it is met, so errors come out in qemu-io's order. Returns the
 * positionals.
 */
function getopt(args: string[], spec: string, ctx: Ctx, onOption: (opt: string, arg: string) => void): string[] {
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const opt = arg[j] as string;
      const at = opt === ':' ? -1 : spec.indexOf(opt);
      if (at < 0) throw ctx.fail(`${ctx.name}: invalid option -- '${opt}'; ${usageLine(ctx.spec)}`);
      if (spec[at + 1] !== ':') {
        onOption(opt, '');
        continue;
      }
      if (j + 1 < arg.length) {
        onOption(opt, arg.slice(j + 1));
      } else {
        const next = args[i + 1];
        if (next === undefined) throw ctx.fail(`${ctx.name}: option requires an argument -- '${opt}'; ${usageLine(ctx.spec)}`);
        onOption(opt, next);
        i++;
      }
      break;
    }
  }
  return positionals;
}

// ---------------------------------------------------------------------------------------------
// Numbers

/**
 * qemu-io's cvtnum(): qemu_strtosz() (src/units.ts) with the result limited to INT64_MAX. Values
 * above 2^53 come back as the nearest double (they are beyond any image, so every request with one
 * fails anyway).
 */
export function parseSizeValue(text: string): number | 'invalid' | 'too-large' {
  const result = cvtnum(text);
  return typeof result === 'bigint' ? Number(result) : result;
}

/** qemu-io's parse_pattern(): strtol(text, &end, 0) in 0..255 with nothing left over. */
export function parsePatternValue(text: string): number | undefined {
  if (text === '') return 0; // strtol converts nothing and leaves nothing over
  const value = qemuStrtol(text);
  return value !== undefined && value >= 0n && value <= 255n ? Number(value) : undefined;
}
