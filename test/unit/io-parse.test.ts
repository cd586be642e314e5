/**
 * The qemu-io command parser of `qcow2 io`. Every expected value is written by hand; the ones about
 * qemu's syntax (sizes, patterns, messages) were first observed with qemu-io 7.2.
 */
import { describe, expect, it } from 'vitest';
import { Qcow2Error } from '../../src/errors.js';
import { cvtstr, fixed, hexdump, report, timestr } from '../../src/cli/io/format.js';
import { parseCommand, parsePatternValue, parseScript, parseSizeValue, splitWords } from '../../src/cli/io/parse.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('sizes (qemu_strtosz, as qemu-io cvtnum uses it)', () => {
  const valid: [string, number][] = [
    ['0', 0],
    ['512', 512],
    ['010', 10], // no octal
    ['+5', 5],
    ['1b', 1],
    ['1B', 1],
    ['1k', KiB],
    ['1K', KiB],
    ['1m', MiB],
    ['1M', MiB],
    ['3G', 3 * 2 ** 30],
    ['2t', 2 * 2 ** 40],
    ['1P', 2 ** 50],
    ['1E', 2 ** 60],
    ['7E', 7 * 2 ** 60],
    ['1.5k', 1536],
    ['1.5M', 1572864],
    ['0.5k', 512],
    ['0.5m', 524288],
    ['1.25k', 1280],
    ['1.k', KiB],
    ['1.0', 1], // a zero fraction needs no unit
    ['1.0b', 1],
    ['1.3k', 1331], // 1331.2
    ['0.7k', 717], // 716.8, rounded half up
    ['0.3k', 307],
    ['0.9999999k', KiB],
    ['1.0000000001k', KiB],
    ['0.00048828125k', 1], // exactly half a byte rounds up
    ['0.000244140625k', 0],
    ['0x10', 16],
    ['0X10', 16],
    ['0x1e', 30], // 'e' and 'b' are hex digits here, not suffixes
    ['0x1b', 27],
    ['0x10b', 267],
    ['0x100000', MiB],
    ['0x1k', KiB], // deprecated in qemu, still accepted
    ['1.5e', 1.5 * 2 ** 60],
    // A fraction that rounds to 1.0 as a double wraps to 0 in QEMU's fixed point: qemu-io reads
    // 1024 bytes (this parser once said 2048; it is now the one qemu-img create uses too).
    ['1.99999999999999999999k', KiB],
    ['0.99999999999999999999k', 0],
  ];
  for (const [text, value] of valid) {
    it(`${text} = ${value}`, () => expect(parseSizeValue(text)).toBe(value));
  }

  const invalid = ['', 'k', '1x', '1kk', '1k5', '1.5', '2.5', '0.5', '1.5b', '.5k', '1e3', '1.5e3k', '0x', '0x1.8', '00x10', '-1', '-0', 'abc', '99999999999999999999k'];
  for (const text of invalid) {
    it(`'${text}' is not a size`, () => expect(parseSizeValue(text)).toBe('invalid'));
  }

  for (const text of ['8E', '16E', '9223372036854775808', '99999999999999999999', '0x8000000000000000']) {
    it(`${text} is too large`, () => expect(parseSizeValue(text)).toBe('too-large'));
  }

  it('INT64_MAX is accepted (as the nearest double)', () => {
    expect(parseSizeValue('9223372036854775807')).toBe(2 ** 63);
  });
});

describe('pattern bytes (strtol base 0, 0..255)', () => {
  const valid: [string, number][] = [
    ['0', 0],
    ['85', 85],
    ['0x55', 0x55],
    ['0XcD', 0xcd],
    ['010', 8], // octal here, unlike sizes
    ['255', 255],
    ['+7', 7],
    ['-0', 0],
    ['', 0],
  ];
  for (const [text, value] of valid) {
    it(`'${text}' = ${value}`, () => expect(parsePatternValue(text)).toBe(value));
  }
  for (const text of ['256', '0x100', '-1', '1k', '08', '0x', 'x', '+', ' ']) {
    it(`'${text}' is not a pattern byte`, () => expect(parsePatternValue(text)).toBeUndefined());
  }
});

describe('splitting words', () => {
  it('splits on blanks and drops empty words', () => {
    expect(splitWords('  read   0   1  ')).toEqual(['read', '0', '1']);
    expect(splitWords('read\t0\t1')).toEqual(['read', '0', '1']);
    expect(splitWords('')).toEqual([]);
  });
  it('groups quoted text and honours backslashes', () => {
    expect(splitWords(`write -P '0x55' "0" 1\\ k`)).toEqual(['write', '-P', '0x55', '0', '1 k']);
    expect(splitWords(`a"b c"'d e'f`)).toEqual(['ab cd ef']);
    expect(splitWords(`"a\\"b\\\\c\\d"`)).toEqual(['a"b\\c\\d']);
    expect(splitWords(`''`)).toEqual(['']);
  });
  it('refuses unterminated quotes', () => {
    expect(() => splitWords(`read '0 1`)).toThrow(/unterminated single quote/);
    expect(() => splitWords(`read "0 1`)).toThrow(/unterminated double quote/);
    expect(() => parseCommand(`read "0 1`)).toThrow(Qcow2Error);
  });
});

describe('read', () => {
  it('defaults', () => {
    expect(parseCommand('read 0 64k')).toEqual({
      kind: 'read',
      command: 'read 0 64k',
      offset: 0,
      length: 65536,
      pattern: undefined,
      patternOffset: 0,
      patternLength: 65536,
      quiet: false,
      verbose: false,
      machine: false,
    });
  });
  it('flags, clustered, attached and after the positionals; the alias r', () => {
    expect(parseCommand('r -qv -P0x55 512 1k -C')).toMatchObject({
      kind: 'read',
      offset: 512,
      length: 1024,
      pattern: 0x55,
      patternLength: 1024,
      quiet: true,
      verbose: true,
      machine: true,
    });
    expect(parseCommand('read -p -q -- 1 2')).toMatchObject({ offset: 1, length: 2, quiet: true });
  });
  it('-s and -l select the verified part', () => {
    expect(parseCommand('read -P 0 -s 1 -l 2 0 4')).toMatchObject({ pattern: 0, patternOffset: 1, patternLength: 2 });
    expect(parseCommand('read -P 0 -s 1 0 4')).toMatchObject({ patternOffset: 1, patternLength: 3 });
  });
  it('errors, with qemu-io messages', () => {
    expect(() => parseCommand('read 0')).toThrow(/-c 'read 0': bad argument count 1 to read, expected at least 2 arguments/);
    expect(() => parseCommand('read -P')).toThrow(/bad argument count 1 to read, expected at least 2 arguments/);
    expect(() => parseCommand('read 0 1 2')).toThrow(/usage: read \[-abCqv\] \[-P pattern \[-s off\] \[-l len\]\] off len/);
    expect(() => parseCommand('read -1 1')).toThrow(/read: invalid option -- '1'/);
    expect(() => parseCommand('r -x 0 1')).toThrow(/r: invalid option -- 'x'/);
    expect(() => parseCommand('read 0 1 -P')).toThrow(/read: option requires an argument -- 'P'/);
    expect(() => parseCommand('read 0 1x')).toThrow(/Parsing error: non-numeric argument, or extraneous\/unrecognized suffix -- 1x$/);
    expect(() => parseCommand('read 8E 1')).toThrow(/Parsing error: argument too large -- 8E$/);
    expect(() => parseCommand('read 0 2G')).toThrow(/length cannot exceed 2147483136, given 2G$/);
    expect(() => parseCommand('read -P 256 0 1')).toThrow(/256 is not a valid pattern byte$/);
    expect(() => parseCommand('read -s 1 0 4')).toThrow(/usage: read/);
    expect(() => parseCommand('read -P 0 -s 5 0 4')).toThrow(/pattern verification range exceeds end of read data/);
    expect(() => parseCommand('read -P 0 -s 3 -l 2 0 4')).toThrow(/pattern verification range exceeds end of read data/);
    expect(() => parseCommand('read -a 0 1')).toThrow(/invalid option -- 'a'/);
  });
  it('-b is qemu syntax we do not support', () => {
    expect(() => parseCommand('read -b 0 512')).toThrow(expect.objectContaining({ code: 'unsupported' }));
    expect(() => parseCommand('read -b 0 1')).toThrow(/1 is not a sector-aligned value for 'count'/);
  });
  it('the largest length', () => {
    expect(parseCommand('read 0 2147483136')).toMatchObject({ length: 2147483136 });
    expect(() => parseCommand('read 0 0x7ffffe01')).toThrow(/length cannot exceed 2147483136, given 0x7ffffe01/);
  });
});

describe('write', () => {
  it('defaults to the 0xcd pattern', () => {
    expect(parseCommand('write 0 1k')).toEqual({
      kind: 'write',
      command: 'write 0 1k',
      offset: 0,
      length: 1024,
      mode: 'data',
      pattern: 0xcd,
      unmap: false,
      fua: false,
      quiet: false,
      machine: false,
    });
  });
  it('-P, -z, -u, -c, -f, -q and the alias w', () => {
    expect(parseCommand('w -P 0x12 -q 1 2')).toMatchObject({ mode: 'data', pattern: 0x12, quiet: true });
    expect(parseCommand('write -zu 4k 4k')).toMatchObject({ mode: 'zeroes', unmap: true, offset: 4096, length: 4096 });
    expect(parseCommand('write -z 0 1')).toMatchObject({ mode: 'zeroes', unmap: false });
    expect(parseCommand('write -c 0 64k')).toMatchObject({ mode: 'compressed', pattern: 0xcd });
    expect(parseCommand('write -c -P 7 0 64k')).toMatchObject({ mode: 'compressed', pattern: 7 });
    expect(parseCommand('write -c -z 0 512')).toMatchObject({ mode: 'zeroes' }); // -z wins, as in qemu-io
    expect(parseCommand('write -f 0 1')).toMatchObject({ fua: true });
    expect(parseCommand('write -p 0 1')).toMatchObject({ mode: 'data' });
  });
  it('errors, with qemu-io messages', () => {
    expect(() => parseCommand('write -u 0 1')).toThrow(/-u requires -z to be specified$/);
    expect(() => parseCommand('write -n 0 1')).toThrow(/-n requires -z to be specified$/);
    expect(() => parseCommand('write -z -P 1 0 1')).toThrow(/Only one of -z, -P, and -s can be specified at the same time$/);
    expect(() => parseCommand('write -c -f 0 512')).toThrow(/-f and -b or -c cannot be specified at the same time$/);
    expect(() => parseCommand('write -b -z 0 512')).toThrow(/-b and -z cannot be specified at the same time$/);
    expect(() => parseCommand('write -c 1 512')).toThrow(/1 is not a sector-aligned value for 'offset'$/);
    expect(() => parseCommand('write -c 0 1')).toThrow(/1 is not a sector-aligned value for 'count'$/);
    expect(() => parseCommand('write 0 3G')).toThrow(/length cannot exceed 2147483136 without -n, given 3G$/);
    expect(() => parseCommand('write -P 0x100 0 1')).toThrow(/0x100 is not a valid pattern byte$/);
    expect(() => parseCommand('write -r 0 1')).toThrow(/write: invalid option -- 'r'/);
    expect(() => parseCommand('write 0')).toThrow(/bad argument count 1 to write, expected at least 2 arguments/);
  });
  it('-b, -s and -n are qemu syntax we do not support', () => {
    for (const cmd of ['write -b 0 512', 'write -s file 0 1', 'write -z -n 0 1']) {
      expect(() => parseCommand(cmd)).toThrow(expect.objectContaining({ code: 'unsupported' }));
    }
  });
  it('a pattern error comes before a later invalid option, as getopt meets them', () => {
    expect(() => parseCommand('write -P 300 -x 0 1')).toThrow(/300 is not a valid pattern byte/);
  });
});

describe('discard and flush', () => {
  it('discard', () => {
    expect(parseCommand('discard 0 4k')).toEqual({ kind: 'discard', command: 'discard 0 4k', offset: 0, length: 4096, quiet: false, machine: false });
    expect(parseCommand('d -qC 1M 1')).toMatchObject({ kind: 'discard', offset: MiB, length: 1, quiet: true, machine: true });
    expect(() => parseCommand('discard -z 0 1')).toThrow(/discard: invalid option -- 'z'; usage: discard \[-Cq\] off len/);
    expect(() => parseCommand('discard 0 1 2')).toThrow(/usage: discard \[-Cq\] off len/);
    expect(() => parseCommand('discard 0 3G')).toThrow(/length cannot exceed 2147483136, given 3G$/);
  });
  it('flush', () => {
    expect(parseCommand('flush')).toEqual({ kind: 'flush', command: 'flush' });
    expect(parseCommand('f')).toEqual({ kind: 'flush', command: 'f' });
    expect(() => parseCommand('flush 1')).toThrow(/bad argument count 1 to flush, expected 0 arguments/);
  });
});

describe('scripts and commands', () => {
  it('unknown commands are usage errors naming the command; empty commands are skipped', () => {
    expect(() => parseCommand('bogus 0 1')).toThrow(expect.objectContaining({ code: 'usage', message: `-c 'bogus 0 1': command "bogus" not found` }));
    expect(() => parseCommand('R 0 1')).toThrow(/command "R" not found/);
    expect(parseCommand('   ')).toBeUndefined();
    expect(parseScript(['', 'flush', ' '])).toEqual([{ kind: 'flush', command: 'flush' }]);
  });
  it('other qemu-io commands are unsupported, not unknown', () => {
    for (const cmd of ['map', 'aio_read 0 1', 'length', 'truncate 1M', 'readv 0 512']) {
      expect(() => parseCommand(cmd)).toThrow(expect.objectContaining({ code: 'unsupported' }));
    }
  });
  it('a script fails on its first bad command', () => {
    expect(() => parseScript(['write 0 1', 'read 0 1x', 'bogus'])).toThrow(/-c 'read 0 1x'/);
  });
});

describe('output formats', () => {
  it('printf %.Nf rounds the exact value half to even', () => {
    expect(fixed(1.0625, 3)).toBe('1.062');
    expect(fixed(1.0635, 3)).toBe('1.063'); // 1.0635 is stored a little below
    expect(fixed(2.5, 0)).toBe('2');
    expect(fixed(0, 6)).toBe('0.000000');
    expect(fixed(1234.5678, 4)).toBe('1234.5678');
    expect(fixed(Infinity, 3)).toBe('inf');
  });
  it('cvtstr', () => {
    expect(cvtstr(65536)).toBe('64 KiB');
    expect(cvtstr(5000)).toBe('4.883 KiB');
    expect(cvtstr(3)).toBe('3 bytes');
    expect(cvtstr(0)).toBe('0 bytes');
    expect(cvtstr(1088)).toBe('1.062 KiB');
    expect(cvtstr(500.5)).toBe('500.500000 bytes');
    expect(cvtstr(2 ** 60)).toBe('1 EiB');
    expect(cvtstr(1.5 * 2 ** 30)).toBe('1.500 GiB');
  });
  it('timestr', () => {
    expect(timestr(1_234_567n, false)).toBe('00.00 sec');
    expect(timestr(123_456_789n, false)).toBe('00.12 sec');
    expect(timestr(123_456_789n, true)).toBe('0:00:00.12');
    expect(timestr(3_725_500_000_000n, false)).toBe('1:02:05.50');
  });
  it('report', () => {
    expect(report('read', 500_000_000n, 0, 65536, 65536, false)).toBe(
      'read 65536/65536 bytes at offset 0\n64 KiB, 1 ops; 00.50 sec (128 KiB/sec and 2.0000 ops/sec)\n',
    );
    expect(report('wrote', 250_000_000n, 7, 1, 1, true)).toBe('1,1,0:00:00.25,4.000,4.000\n');
  });
  it('hexdump', () => {
    const data = new Uint8Array(20).fill(0xcd);
    data.set([0x41, 0x7a, 0x30, 0x20, 0x2e], 2);
    expect(hexdump(data, 0x5a)).toBe(
      '0000005a:  cd cd 41 7a 30 20 2e cd cd cd cd cd cd cd cd cd  ..Az0...........\n' + '0000006a:  cd cd cd cd  ....\n',
    );
  });
});
