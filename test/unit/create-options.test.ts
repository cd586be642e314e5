/**
 * Option parsing of `qcow2 create` and every combination it refuses. Expected values and messages
 * are hand-written from what `qemu-img create -f qcow2` (QEMU 7.2) accepts and says.
 */
import { describe, expect, it } from 'vitest';
import {
  type CreateOptions,
  CreateOptionSet,
  formatOptions,
  formattingLine,
  hasHelpOption,
  isValidOptionList,
  parseCreateOptions,
  parseImageSize,
  splitOptionList,
  typedCreateOptions,
  validateCreateOptions,
} from '../../src/create/options.js';
import { Qcow2Error } from '../../src/errors.js';
import { qemuStrtosz } from '../../src/units.js';

function error(fn: () => unknown): Qcow2Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Qcow2Error) return err;
    throw err;
  }
  throw new Error('expected a Qcow2Error');
}

describe('sizes (qemu_strtosz)', () => {
  const accepted: [string, bigint][] = [
    ['0', 0n],
    ['00', 0n],
    ['1', 1n],
    ['1000', 1000n],
    ['010', 10n], // decimal, not octal
    ['0x1000', 4096n],
    ['0x1k', 1024n], // QEMU 7.2 still takes a suffix after hexadecimal
    ['0x1b', 27n], // ... but b and e are hexadecimal digits
    ['1b', 1n],
    ['1B', 1n],
    ['1k', 1024n],
    ['1K', 1024n],
    ['1.5k', 1536n],
    ['1.25k', 1280n],
    ['0.1k', 102n], // 102.4, rounded half up
    ['1.0000001k', 1024n],
    ['5.k', 5120n], // no fractional digits
    ['1.2M', 1258291n],
    ['1.5G', 1610612736n],
    ['1g', 1073741824n],
    ['1T', 1099511627776n],
    ['1t', 1099511627776n],
    ['1P', 1125899906842624n],
    ['1.5e', 1729382256910270464n], // 'e' is the exabyte suffix
    ['7E', 8070450532247928832n],
    [' 1M', 1048576n], // leading white space
    ['1.0', 1n], // a zero fraction needs no suffix
    ['1.99999999999999999999k', 1024n], // the fraction rounds to 1.0 and wraps to 0, as in QEMU
  ];
  for (const [text, value] of accepted) {
    it(`accepts '${text}' as ${value}`, () => {
      expect(qemuStrtosz(text)).toEqual({ ok: true, value });
    });
  }

  const invalid = ['', 'abc', '1.5', '0.5', '1024.5', '1KiB', '1e3', '1.5e3', '1M1', '1 M', '.5k', '1,5k', '-1', '- 1', '0x', '0x1.5', '1.5b'];
  for (const text of invalid) {
    it(`refuses '${text}'`, () => {
      expect(qemuStrtosz(text)).toEqual({ ok: false, error: 'invalid' });
    });
  }

  it('says out of range for 16E and above 2^64', () => {
    expect(qemuStrtosz('16E')).toEqual({ ok: false, error: 'range' });
    expect(qemuStrtosz('18446744073709551616')).toEqual({ ok: false, error: 'range' });
    expect(qemuStrtosz('18446744073709551615')).toEqual({ ok: true, value: 18446744073709551615n });
  });

  it('takes the SIZE argument up to INT64_MAX only', () => {
    expect(parseImageSize('1.5G')).toBe(1610612736n);
    expect(error(() => parseImageSize('1.5')).message).toMatch(/^Invalid image size specified\. You may use k, M, G, T, P or E suffixes/);
    expect(error(() => parseImageSize('8E')).message).toBe('Invalid image size specified. Must be between 0 and 9223372036854775807.');
    expect(error(() => parseImageSize('16E')).message).toBe('Invalid image size specified. Must be between 0 and 9223372036854775807.');
    expect(parseImageSize('9223372036854775807')).toBe(9223372036854775807n);
  });
});

describe('-o option lists', () => {
  it('splits key=value pairs, with ,, for a comma in a value', () => {
    expect(splitOptionList('cluster_size=4k,data_file=a,,b.raw,compat=1.1')).toEqual([
      { name: 'cluster_size', value: '4k' },
      { name: 'data_file', value: 'a,b.raw' },
      { name: 'compat', value: '1.1' },
    ]);
  });

  it('reads a bare key as key=on and nokey as key=off', () => {
    expect(splitOptionList('lazy_refcounts,noextended_l2')).toEqual([
      { name: 'lazy_refcounts', value: 'on' },
      { name: 'extended_l2', value: 'off' },
    ]);
  });

  it('checks each -o argument as qemu-img does', () => {
    expect(isValidOptionList('cluster_size=4k')).toBe(true);
    expect(isValidOptionList('data_file=a,,')).toBe(true);
    expect(isValidOptionList('')).toBe(false);
    expect(isValidOptionList(',cluster_size=4k')).toBe(false);
    expect(isValidOptionList('cluster_size=4k,')).toBe(false);
    expect(error(() => parseCreateOptions(['cluster_size=4k,'])).message).toBe('Invalid option list: cluster_size=4k,');
  });

  it('finds help only as a whole item', () => {
    expect(hasHelpOption('help')).toBe(true);
    expect(hasHelpOption('cluster_size=4k,?')).toBe(true);
    expect(hasHelpOption('cluster_size=help')).toBe(false);
  });

  it('lets the last occurrence win, across several -o', () => {
    const set = parseCreateOptions(['cluster_size=4k,cluster_size=8k', 'refcount_bits=8']);
    expect(set.get('cluster_size')?.number).toBe(8192n);
    expect(set.get('refcount_bits')?.number).toBe(8n);
  });

  it('parses typed values: sizes with suffixes, C numbers, QEMU booleans', () => {
    const set = parseCreateOptions(['cluster_size=1.5k,refcount_bits=0x10,lazy_refcounts=yes,extended_l2=n']);
    expect(set.get('cluster_size')?.number).toBe(1536n);
    expect(set.get('refcount_bits')?.number).toBe(16n);
    expect(parseCreateOptions(['refcount_bits=010']).get('refcount_bits')?.number).toBe(8n); // octal
    expect(set.get('lazy_refcounts')?.bool).toBe(true);
    expect(set.get('extended_l2')?.bool).toBe(false);
    for (const yes of ['on', 'yes', 'true', 'y']) expect(parseCreateOptions([`data_file_raw=${yes}`]).get('data_file_raw')?.bool).toBe(true);
    for (const no of ['off', 'no', 'false', 'n']) expect(parseCreateOptions([`data_file_raw=${no}`]).get('data_file_raw')?.bool).toBe(false);
  });

  it('refuses unknown keys and badly typed values', () => {
    expect(error(() => parseCreateOptions(['foo=bar'])).message).toBe("Invalid parameter 'foo'");
    expect(error(() => parseCreateOptions(['lazy_refcounts=maybe'])).message).toBe("Parameter 'lazy_refcounts' expects 'on' or 'off'");
    expect(error(() => parseCreateOptions(['refcount_bits=abc'])).message).toBe("Parameter 'refcount_bits' expects a number");
    expect(error(() => parseCreateOptions(['cluster_size=abc'])).message).toMatch(/^Parameter 'cluster_size' expects a non-negative number below 2\^64/);
    expect(error(() => parseCreateOptions(['size=20E'])).message).toBe("Value '20E' is out of range for parameter 'size'");
    expect(error(() => parseCreateOptions(['foo=bar'])).code).toBe('usage');
  });
});

describe('the Formatting line', () => {
  const line = (lists: string[], size?: bigint) => {
    const set = parseCreateOptions(lists);
    if (size !== undefined) set.setNumber('size', size);
    return formattingLine('t.q', set);
  };

  it('lists defaults, then given options, in QEMU order', () => {
    expect(line([], 1048576n)).toBe(
      "Formatting 't.q', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib size=1048576 lazy_refcounts=off refcount_bits=16",
    );
    expect(
      line([
        'compat=1.1,data_file=d.raw,data_file_raw=on,preallocation=metadata,lazy_refcounts=on,refcount_bits=8,compression_type=zstd,extended_l2=on,cluster_size=16k',
      ], 1048576n),
    ).toBe(
      "Formatting 't.q', fmt=qcow2 cluster_size=16384 extended_l2=on preallocation=metadata compression_type=zstd size=1048576 compat=1.1 data_file=d.raw data_file_raw=on lazy_refcounts=on refcount_bits=8",
    );
  });

  it('prints numbers as numbers, booleans and strings as given (commas doubled)', () => {
    const set = parseCreateOptions(['compat=v3,data_file=d,,x.raw,lazy_refcounts=y,extended_l2=yes,refcount_bits=0x10,backing_file=base.qcow2,backing_fmt=qcow2']);
    set.setNumber('size', 1n);
    expect(formatOptions(set)).toBe(
      'cluster_size=65536 extended_l2=yes compression_type=zlib size=1 compat=v3 backing_file=base.qcow2 backing_fmt=qcow2 data_file=d,,x.raw lazy_refcounts=y refcount_bits=16',
    );
  });

  it('prints a bare flag as on and a no-flag as off', () => {
    expect(line(['lazy_refcounts'], 512n)).toContain('lazy_refcounts=on');
    expect(line(['nolazy_refcounts'], 512n)).toContain('lazy_refcounts=off');
  });
});

describe('option values QEMU does not know (the QAPI visit)', () => {
  const typed = (list: string) => {
    const set = parseCreateOptions([list]);
    set.setNumber('size', 1048576n);
    return typedCreateOptions(set);
  };

  it('maps compat to the header version', () => {
    expect(typed('compat=0.10').version).toBe(2);
    expect(typed('compat=v2').version).toBe(2);
    expect(typed('compat=1.1').version).toBe(3);
    expect(typed('compat=v3').version).toBe(3);
  });

  it('refuses unknown enum values', () => {
    expect(error(() => typed('compat=2')).message).toBe("Parameter 'version' does not accept value '2'");
    expect(error(() => typed('compression_type=lzo')).message).toBe("Parameter 'compression-type' does not accept value 'lzo'");
    expect(error(() => typed('preallocation=bogus')).message).toBe("Parameter 'preallocation' does not accept value 'bogus'");
    expect(error(() => typed('backing_file=x,backing_fmt=foo')).message).toBe("Parameter 'backing-fmt' does not accept value 'foo'");
    expect(error(() => typed('backing_file=x,backing_fmt=QCOW2')).message).toBe("Parameter 'backing-fmt' does not accept value 'QCOW2'");
    expect(typed('backing_file=x,backing_fmt=vmdk').backingFormat).toBe('vmdk');
  });

  it('refuses an empty data file name', () => {
    expect(error(() => typed('data_file=')).message).toBe("Could not create '': No such file or directory");
  });

  it('needs a size', () => {
    expect(error(() => typedCreateOptions(new CreateOptionSet())).message).toBe('Image creation needs a size parameter');
  });

  it('takes encrypt.format=luks (with its secret), refuses legacy AES', () => {
    expect(typed('encrypt.format=luks,encrypt.key-secret=sec0').encrypt).toMatchObject({ format: 'luks', keySecret: 'sec0', cipherAlg: 'aes-256', cipherMode: 'xts', iterTime: 2000 });
    expect(error(() => typed('encrypt.format=luks')).message).toBe("Parameter 'encrypt.key-secret' is required for cipher");
    expect(error(() => typed('encrypt.format=aes,encrypt.key-secret=sec0')).code).toBe('unsupported');
    expect(error(() => typed('encryption=on')).code).toBe('unsupported');
  });
});

describe('combinations (qcow2_co_create checks)', () => {
  const M = 1048576n;
  const ok = (o: Partial<CreateOptions>) => validateCreateOptions({ size: M, ...o });
  const refused = (o: Partial<CreateOptions>) => error(() => ok(o));

  it('fills in QEMU defaults', () => {
    expect(ok({})).toEqual({
      size: M,
      version: 3,
      clusterSize: 65536,
      clusterBits: 16,
      refcountBits: 16,
      refcountOrder: 4,
      extendedL2: false,
      compressionType: 'zlib',
      lazyRefcounts: false,
      dataFile: undefined,
      dataFileRaw: false,
      preallocation: 'off',
      backingFile: undefined,
      backingFormat: undefined,
    });
  });

  it('rounds the size up to 512 bytes', () => {
    expect(ok({ size: 1n }).size).toBe(512n);
    expect(ok({ size: 1000 }).size).toBe(1024n);
    expect(ok({ size: 1073741825n }).size).toBe(1073742336n);
    expect(ok({ size: 0 }).size).toBe(0n);
  });

  it('accepts every power-of-two cluster size from 512 to 2M and refcount width from 1 to 64', () => {
    for (let bits = 9; bits <= 21; bits++) expect(ok({ clusterSize: 2 ** bits }).clusterBits).toBe(bits);
    for (let order = 0; order <= 6; order++) expect(ok({ refcountBits: 2 ** order }).refcountOrder).toBe(order);
  });

  it('refuses cluster sizes that are not a power of two between 512 and 2048k', () => {
    for (const clusterSize of [0, 256, 1000, 1536, 4 * 1048576]) {
      expect(refused({ clusterSize }).message).toBe('Cluster size must be a power of two between 512 and 2048k');
    }
  });

  it('extended L2 needs compat 1.1 and clusters of at least 16k', () => {
    expect(refused({ extendedL2: true, version: 2 }).message).toMatch(/^Extended L2 entries are only supported with compatibility level 1\.1 and above/);
    expect(refused({ extendedL2: true, clusterSize: 8192 }).message).toBe('Extended L2 entries are only supported with cluster sizes of at least 16384 bytes');
    expect(ok({ extendedL2: true, clusterSize: 16384 }).extendedL2).toBe(true);
  });

  it('checks compat before the cluster size (QEMU order)', () => {
    expect(refused({ extendedL2: true, version: 2, clusterSize: 1000 }).message).toMatch(/^Extended L2 entries are only supported with compatibility level/);
  });

  it('a backing file with preallocation needs extended L2', () => {
    expect(refused({ backingFile: 'b', backingFormat: 'qcow2', preallocation: 'metadata' }).message).toBe(
      'Backing file and preallocation can only be used at the same time if extended_l2 is on',
    );
    expect(ok({ backingFile: 'b', backingFormat: 'qcow2', preallocation: 'metadata', extendedL2: true }).preallocation).toBe('metadata');
  });

  it('a backing format needs a backing file', () => {
    expect(refused({ backingFormat: 'qcow2' }).message).toBe('Backing format cannot be used without backing file');
  });

  it('lazy refcounts need compat 1.1', () => {
    expect(refused({ lazyRefcounts: true, version: 2 }).message).toMatch(/^Lazy refcounts only supported with compatibility level 1\.1 and above/);
  });

  it('refcount width: a power of two up to 64, and 16 only for compat 0.10', () => {
    for (const refcountBits of [0, 3, 12, 128, -1]) {
      expect(refused({ refcountBits }).message).toBe('Refcount width must be a power of two and may not exceed 64 bits');
    }
    expect(refused({ refcountBits: 8, version: 2 }).message).toMatch(/^Different refcount widths than 16 bits require compatibility level 1\.1 or above/);
    expect(ok({ refcountBits: 16, version: 2 }).refcountBits).toBe(16);
  });

  it('data_file_raw needs data_file and no backing file; it implies preallocation=metadata', () => {
    expect(refused({ dataFileRaw: true }).message).toBe('data_file_raw requires data_file');
    expect(refused({ dataFile: 'd', dataFileRaw: true, backingFile: 'b', backingFormat: 'qcow2' }).message).toBe(
      'Backing file and data_file_raw cannot be used at the same time',
    );
    expect(ok({ dataFile: 'd', dataFileRaw: true }).preallocation).toBe('metadata');
    expect(ok({ dataFile: 'd' }).preallocation).toBe('off');
  });

  it('an external data file needs compat 1.1', () => {
    expect(refused({ dataFile: 'd', version: 2 }).message).toMatch(/^External data files are only supported with compatibility level 1\.1 and above/);
  });

  it('zstd needs compat 1.1', () => {
    expect(refused({ compressionType: 'zstd', version: 2 }).message).toMatch(/^Non-zlib compression type is only supported with compatibility level 1\.1 and above/);
    expect(ok({ compressionType: 'zstd' }).compressionType).toBe('zstd');
  });

  it('takes preallocation=falloc and full, with encryption too', () => {
    for (const preallocation of ['falloc', 'full'] as const) {
      expect(ok({ preallocation }).preallocation).toBe(preallocation);
      const encrypt = { format: 'luks', keySecret: 's' } as unknown as NonNullable<CreateOptions['encrypt']>;
      expect(ok({ preallocation, encrypt }).preallocation).toBe(preallocation);
    }
  });

  it('all refusals are usage errors, except what we do not implement', () => {
    expect(refused({ clusterSize: 1000 }).code).toBe('usage');
    expect(refused({ dataFileRaw: true }).code).toBe('usage');
  });

  it('refuses sizes the resize step refuses', () => {
    expect(refused({ size: 1n << 63n }).message).toBe('Could not resize image: Image size cannot be negative');
    expect(refused({ size: (1n << 63n) - 512n }).message).toBe(
      'Could not resize image: offset(9223372036854775296) exceeds maximum(9223372035781033984)',
    );
    const tooLarge = "The image size is too large for file format 'qcow2' (try using a larger cluster size)";
    expect(refused({ size: 7n << 60n }).message).toBe(tooLarge);
    // 512-byte clusters: at most 4 Mi L1 entries of 64 clusters each, 128 GiB.
    expect(ok({ size: 128n << 30n, clusterSize: 512 }).size).toBe(128n << 30n);
    expect(refused({ size: (128n << 30n) + 512n, clusterSize: 512 }).message).toBe(tooLarge);
    // Extended L2 halves the entries per table.
    expect(refused({ size: (1n << 50n) * 2n + 512n, extendedL2: true }).message).toBe(tooLarge);
    expect(ok({ size: 1n << 50n }).size).toBe(1n << 50n);
  });

  it('refuses a backing file name over 1023 bytes, and headers that do not fit in cluster 0', () => {
    expect(refused({ backingFile: 'y'.repeat(1024), backingFormat: 'qcow2' }).message).toMatch(/^Could not assign backing file 'y+' with format 'qcow2': Invalid argument/);
    expect(ok({ backingFile: 'y'.repeat(1023), backingFormat: 'qcow2' }).backingFile).toHaveLength(1023);
    // 512-byte clusters: 112 header + 16 format extension + 8 end marker leave 376 bytes for the name.
    expect(ok({ clusterSize: 512, backingFile: 'y'.repeat(376), backingFormat: 'qcow2' }).clusterSize).toBe(512);
    expect(refused({ clusterSize: 512, backingFile: 'y'.repeat(377), backingFormat: 'qcow2' }).message).toMatch(/: No space left on device$/);
    expect(refused({ clusterSize: 512, dataFile: 'x'.repeat(400) }).message).toBe('Could not update qcow2 header: No space left on device');
  });
});
