/**
 * Options of `qcow2 create`, parsed and checked the way `qemu-img create -f qcow2` (QEMU 7.2) does.
 *
 * Three stages, as in QEMU:
 *  1. `-o` strings: QemuOpts syntax (`key=value,key=value`, `,,` escapes a comma inside a value, a
 *     bare `key` means `key=on` and `nokey` means `key=off`). Every value is checked against its
 *     option's type as it is set (bool, size with k/M/G/T/P/E suffixes, number, string); the last
 *     occurrence of a key wins. See {@link parseCreateOptions}.
 *  2. The strings become typed values (QEMU's QAPI visit of BlockdevCreateOptionsQcow2): enum
 *     values (`compat`, `backing_fmt`, `preallocation`, `compression_type`) are checked here. See
 *     {@link typedCreateOptions}.
 *  3. Combinations are checked in the order of qcow2_co_create (block/qcow2.c). See
 *     {@link validateCreateOptions}.
 * Error messages keep the meaning (mostly the words) of qemu-img's.
 */
import type { LuksCreateOptions } from '../crypto/luks-keys.js';
import { unsupported, usage } from '../errors.js';
import { align8 } from '../format/bytes.js';
import { FEATURE_TABLE_ENTRY_SIZE, MIN_CLUSTER_BITS, MIN_CLUSTER_BITS_EXTL2 } from '../format/constants.js';
import { INT64_MAX, MAX_BACKING_FILE_NAME, MAX_CLUSTER_BITS, MAX_DEVICE_LENGTH, MAX_L1_BYTES } from '../limits.js';
import { cvtnumFull, qemuStrtosz } from '../units.js';

const TWO_64 = 1n << 64n;

// Sizes (SIZE and the size options) are read by src/units.ts, qemu_strtosz, shared with `qcow2 io`.

/** The SIZE argument of `qemu-img create` (cvtnum: 0 .. INT64_MAX). */
export function parseImageSize(text: string): bigint {
  const r = cvtnumFull('image size', text, INT64_MAX);
  if ('error' in r) throw usage(r.error);
  return r.value;
}

// ---------------------------------------------------------------------------------------------
// The option list (qcow2 create options, then the file protocol's)
// ---------------------------------------------------------------------------------------------

export type OptionType = 'bool' | 'string' | 'size' | 'number';

export interface OptionDesc {
  name: string;
  type: OptionType;
  /** Printed in the "Formatting" line when the option is not given. */
  def?: string;
  help: string;
}

/** In QEMU's order, which is the order of the "Formatting ..." line. */
export const CREATE_OPTIONS: readonly OptionDesc[] = [
  { name: 'encryption', type: 'bool', help: "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)" },
  { name: 'encrypt.format', type: 'string', help: "Encrypt the image, format choices: 'aes', 'luks'" },
  { name: 'encrypt.key-secret', type: 'string', help: 'ID of secret providing qcow AES key or LUKS passphrase' },
  { name: 'encrypt.cipher-alg', type: 'string', help: 'Name of encryption cipher algorithm' },
  { name: 'encrypt.cipher-mode', type: 'string', help: 'Name of encryption cipher mode' },
  { name: 'encrypt.ivgen-alg', type: 'string', help: 'Name of IV generator algorithm' },
  { name: 'encrypt.ivgen-hash-alg', type: 'string', help: 'Name of IV generator hash algorithm' },
  { name: 'encrypt.hash-alg', type: 'string', help: 'Name of encryption hash algorithm' },
  { name: 'encrypt.iter-time', type: 'number', help: 'Time to spend in PBKDF in milliseconds' },
  { name: 'cluster_size', type: 'size', def: '65536', help: 'qcow2 cluster size' },
  { name: 'extended_l2', type: 'bool', def: 'off', help: 'Extended L2 tables' },
  { name: 'preallocation', type: 'string', help: 'Preallocation mode (allowed values: off, metadata, falloc, full)' },
  { name: 'compression_type', type: 'string', def: 'zlib', help: 'Compression method used for image cluster compression' },
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'compat', type: 'string', help: 'Compatibility level (v2 [0.10] or v3 [1.1])' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'backing_fmt', type: 'string', help: 'Image format of the base image' },
  { name: 'data_file', type: 'string', help: 'File name of an external data file' },
  { name: 'data_file_raw', type: 'bool', help: 'The external data file must stay valid as a raw image' },
  { name: 'lazy_refcounts', type: 'bool', def: 'off', help: 'Postpone refcount updates' },
  { name: 'refcount_bits', type: 'number', def: '16', help: 'Width of a reference count entry in bits' },
  // The file protocol's own options: accepted and printed as qemu-img does; they do not change
  // a single byte of the image (nocow is a btrfs attribute, extent_size_hint an XFS hint).
  { name: 'nocow', type: 'bool', help: 'Turn off copy-on-write (valid only on btrfs)' },
  { name: 'extent_size_hint', type: 'size', help: 'Extent size hint for the image file, 0 to disable' },
];

const DESC_BY_NAME = new Map(CREATE_OPTIONS.map((d) => [d.name, d]));

/** The options of the raw format (its `size`, then the file protocol's), for `qcow2 measure -O raw`. */
export const RAW_CREATE_OPTION_NAMES: ReadonlySet<string> = new Set(['size', 'preallocation', 'nocow', 'extent_size_hint']);

/** The `-o help` text. */
export function optionHelp(): string {
  const lines = [...CREATE_OPTIONS]
    .filter((d) => !d.name.startsWith('encrypt') && d.name !== 'nocow' && d.name !== 'extent_size_hint')
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((d) => {
      const kind = d.type === 'bool' ? 'bool (on/off)' : d.type === 'number' ? 'num' : d.type === 'size' ? 'size' : 'str';
      return `  ${`${d.name}=<${kind}>`.padEnd(22)} - ${d.help}`;
    });
  return `Supported qcow2 options:\n${lines.join('\n')}\n`;
}

export interface OptionValue {
  name: string;
  /** The text as given (after `,,` unescaping). */
  text: string;
  /** Parsed value of size and number options (u64). */
  number?: bigint;
  /** Parsed value of bool options. */
  bool?: boolean;
}

/** The options given, in order; the last occurrence of a name wins (qemu_opt_find). */
export class CreateOptionSet {
  readonly entries: OptionValue[] = [];

  /** `names`: the options this set accepts (default: all of {@link CREATE_OPTIONS}). */
  constructor(private readonly names?: ReadonlySet<string>) {}

  get(name: string): OptionValue | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e?.name === name) return e;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Sets `name` to `text`, checking the text against the option's type (qemu_opt_set). */
  set(name: string, text: string): void {
    const desc = this.names === undefined || this.names.has(name) ? DESC_BY_NAME.get(name) : undefined;
    if (desc === undefined) throw usage(`Invalid parameter '${name}'`);
    this.entries.push(parseValue(desc, text));
  }

  /** Sets a size or number option to an already parsed value (qemu_opt_set_number). */
  setNumber(name: string, value: bigint): void {
    this.entries.push({ name, text: value.toString(), number: value });
  }
}

function parseValue(desc: OptionDesc, text: string): OptionValue {
  switch (desc.type) {
    case 'string':
      return { name: desc.name, text };
    case 'bool': {
      const bool = parseBool(text);
      if (bool === undefined) throw usage(`Parameter '${desc.name}' expects 'on' or 'off'`);
      return { name: desc.name, text, bool };
    }
    case 'size': {
      const r = qemuStrtosz(text);
      if (!r.ok && r.error === 'range') throw usage(`Value '${text}' is out of range for parameter '${desc.name}'`);
      if (!r.ok) {
        throw usage(
          `Parameter '${desc.name}' expects a non-negative number below 2^64 (optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- and exabytes, respectively)`,
        );
      }
      return { name: desc.name, text, number: r.value };
    }
    case 'number': {
      const r = parseU64(text);
      if (r === 'range') throw usage(`Value '${text}' is out of range for parameter '${desc.name}'`);
      if (r === undefined) throw usage(`Parameter '${desc.name}' expects a number`);
      return { name: desc.name, text, number: r };
    }
  }
}

/** qapi_bool_parse. */
export function parseBool(text: string): boolean | undefined {
  if (text === 'on' || text === 'yes' || text === 'true' || text === 'y') return true;
  if (text === 'off' || text === 'no' || text === 'false' || text === 'n') return false;
  return undefined;
}

/** qemu_strtou64 with base 0 (0x hexadecimal, leading-0 octal, decimal); negatives wrap as in C. */
function parseU64(text: string): bigint | 'range' | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (m === null) return undefined;
  const digits = m[2] ?? '0';
  const magnitude = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits.startsWith('0') ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  if (magnitude >= TWO_64) return 'range';
  return m[1] === '-' ? (TWO_64 - magnitude) % TWO_64 : magnitude;
}

/** qemu-img's check of each `-o` argument: not empty, no leading comma, no odd run of trailing commas. */
export function isValidOptionList(text: string): boolean {
  if (text === '' || text.startsWith(',')) return false;
  let i = text.length;
  while (i > 0 && text[i - 1] === ',') i--;
  return (text.length - i) % 2 === 0;
}

/** True when an item of an option list is `help` or `?` (qemu-img's has_help_option, checked first). */
export function hasHelpOption(text: string): boolean {
  const items: string[] = [];
  let item = '';
  for (let p = 0; p < text.length; p++) {
    const c = text[p];
    if (c === ',' && text[p + 1] === ',') {
      item += ',';
      p++;
    } else if (c === ',') {
      items.push(item);
      item = '';
    } else {
      item += c;
    }
  }
  items.push(item);
  return items.some((i) => i === 'help' || i === '?');
}

/** QemuOpts syntax (get_opt_name_value): keys end at '=' or ','; values unescape ',,' to ','. */
export function splitOptionList(text: string): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  let p = 0;
  while (p < text.length) {
    let len = 0;
    while (p + len < text.length && text[p + len] !== '=' && text[p + len] !== ',') len++;
    let name = text.slice(p, p + len);
    let value: string;
    if (text[p + len] !== '=') {
      // "foo,more": a flag
      p += len;
      if (name.startsWith('no')) {
        name = name.slice(2);
        value = 'off';
      } else {
        value = 'on';
      }
    } else {
      p += len + 1;
      let v = '';
      for (;;) {
        const c = text[p];
        if (c === undefined) break;
        if (c === ',') {
          if (text[p + 1] !== ',') break;
          p += 2;
          v += ',';
          continue;
        }
        v += c;
        p++;
      }
      value = v;
    }
    out.push({ name, value });
    if (text[p] === ',') p++;
  }
  return out;
}

/**
 * Parses the `-o` arguments (each checked as qemu-img does, then joined with commas) into an option
 * set, checking each value against its option's type.
 */
export function parseCreateOptions(lists: readonly string[], names?: ReadonlySet<string>): CreateOptionSet {
  for (const list of lists) {
    if (!isValidOptionList(list)) throw usage(`Invalid option list: ${list}`);
  }
  const set = new CreateOptionSet(names);
  for (const { name, value } of splitOptionList(lists.join(','))) set.set(name, value);
  return set;
}

/** The option part of qemu-img's `Formatting 'IMAGE', fmt=qcow2 ...` line (qemu_opts_print). */
export function formatOptions(set: CreateOptionSet): string {
  const parts: string[] = [];
  for (const desc of CREATE_OPTIONS) {
    const opt = set.get(desc.name);
    const value = opt?.text ?? desc.def;
    if (value === undefined) continue;
    if (desc.type === 'string') parts.push(`${desc.name}=${value.replace(/,/g, ',,')}`);
    else if ((desc.type === 'size' || desc.type === 'number') && opt?.number !== undefined) {
      parts.push(`${desc.name}=${BigInt.asIntN(64, opt.number)}`);
    } else parts.push(`${desc.name}=${value}`);
  }
  return parts.join(' ');
}

/** The whole line qemu-img prints before creating an image. */
export function formattingLine(image: string, set: CreateOptionSet): string {
  return `Formatting '${image}', fmt=qcow2 ${formatOptions(set)}`;
}

// ---------------------------------------------------------------------------------------------
// Typed options and their checks
// ---------------------------------------------------------------------------------------------

export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';
export type CompressionType = 'zlib' | 'zstd';

/** What `createImage` takes. Omitted fields take qemu-img's defaults. */
export interface CreateOptions {
  /** Virtual size in bytes; rounded up to a multiple of 512 as qemu-img does. */
  size: bigint | number;
  /** 2 (compat=0.10) or 3 (compat=1.1, the default). */
  version?: 2 | 3;
  /** Default 65536. */
  clusterSize?: number | bigint;
  /** Default 16. */
  refcountBits?: number | bigint;
  extendedL2?: boolean;
  compressionType?: CompressionType;
  lazyRefcounts?: boolean;
  /** External data file name, stored as given; created (truncated) relative to the working directory. */
  dataFile?: string;
  dataFileRaw?: boolean;
  /** With encryption, preallocated clusters read as the decryption of what the file holds (as in QEMU). */
  preallocation?: Preallocation;
  /** Stored as given (not made absolute). */
  backingFile?: string;
  backingFormat?: string;
  /** encrypt.format=luks and its encrypt.* options (legacy AES is refused). */
  encrypt?: LuksCreateRequest;
}

/** A LUKS image to create: the options, and the ID of the secret holding the passphrase. */
export interface LuksCreateRequest extends LuksCreateOptions {
  format: 'luks';
  /** encrypt.key-secret: the ID of an --object secret. */
  keySecret: string;
}

/** Checked options with every default filled in. */
export interface ResolvedCreateOptions {
  /** Rounded up to a multiple of 512. */
  size: bigint;
  version: 2 | 3;
  clusterSize: number;
  clusterBits: number;
  refcountBits: number;
  refcountOrder: number;
  extendedL2: boolean;
  compressionType: CompressionType;
  lazyRefcounts: boolean;
  dataFile: string | undefined;
  dataFileRaw: boolean;
  /** At least 'metadata' whenever data_file_raw is on, as QEMU enforces. */
  preallocation: Preallocation;
  backingFile: string | undefined;
  backingFormat: string | undefined;
  encrypt: LuksCreateRequest | undefined;
}

/** QEMU 7.2's BlockdevDriver enum as built by Debian (no libblkio drivers): valid backing_fmt values. */
export const BLOCK_DRIVERS: readonly string[] = [
  'blkdebug', 'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-before-write',
  'copy-on-read', 'dmg', 'file', 'snapshot-access', 'ftp', 'ftps', 'gluster', 'host_cdrom', 'host_device',
  'http', 'https', 'iscsi', 'luks', 'nbd', 'nfs', 'null-aio', 'null-co', 'nvme', 'parallels', 'preallocate',
  'qcow', 'qcow2', 'qed', 'quorum', 'raw', 'rbd', 'replication', 'ssh', 'throttle', 'vdi', 'vhdx', 'vmdk',
  'vpc', 'vvfat',
];

/** QEMU's feature name table: 8 entries of 48 bytes. */
const FEATURE_TABLE_BYTES = 8 * FEATURE_TABLE_ENTRY_SIZE;

const ENCRYPT_OPTIONS = CREATE_OPTIONS.filter((d) => d.name.startsWith('encrypt')).map((d) => d.name);

/** QEMU 7.2's QAPI enums of the LUKS creation options, in the order its visit checks them. */
const LUKS_ENUMS: readonly [option: string, qapiName: string, values: readonly string[]][] = [
  ['encrypt.cipher-alg', 'cipher-alg', ['aes-128', 'aes-192', 'aes-256', 'des', '3des', 'cast5-128', 'serpent-128', 'serpent-192', 'serpent-256', 'twofish-128', 'twofish-192', 'twofish-256']],
  ['encrypt.cipher-mode', 'cipher-mode', ['ecb', 'cbc', 'xts', 'ctr']],
  ['encrypt.ivgen-alg', 'ivgen-alg', ['plain', 'plain64', 'essiv']],
  ['encrypt.ivgen-hash-alg', 'ivgen-hash-alg', ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160']],
  ['encrypt.hash-alg', 'hash-alg', ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160']],
];

/**
 * The `encrypt.*` options of a LUKS image to create (encrypt.format=luks), with QEMU's defaults:
 * names QEMU does not know refused as its QAPI visit refuses them, then a missing key-secret, as
 * qcrypto_block_luks_create (create and measure share this).
 */
export function luksCreateRequest(set: CreateOptionSet): LuksCreateRequest {
  const text = (name: string) => set.get(name)?.text;
  for (const [option, qapiName, values] of LUKS_ENUMS) {
    const value = text(option);
    if (value !== undefined && !values.includes(value)) throw usage(`Parameter '${qapiName}' does not accept value '${value}'`);
  }
  const keySecret = text('encrypt.key-secret');
  if (keySecret === undefined) throw usage("Parameter 'encrypt.key-secret' is required for cipher");
  const iterTime = set.get('encrypt.iter-time')?.number;
  return {
    format: 'luks',
    keySecret,
    cipherAlg: text('encrypt.cipher-alg') ?? 'aes-256',
    cipherMode: text('encrypt.cipher-mode') ?? 'xts',
    ivgenAlg: text('encrypt.ivgen-alg') ?? 'plain64',
    ivgenHashAlg: text('encrypt.ivgen-hash-alg') ?? 'sha256',
    hashAlg: text('encrypt.hash-alg') ?? 'sha256',
    iterTime: iterTime === undefined ? 2000 : Number(iterTime),
  };
}

/**
 * Stage 2: the option set as typed options (QEMU's QAPI visit), refusing enum values QEMU does not
 * know, in the order QEMU visits the fields. The size must already be in the set.
 */
export function typedCreateOptions(set: CreateOptionSet): CreateOptions {
  const text = (name: string) => set.get(name)?.text;
  const bool = (name: string) => set.get(name)?.bool;
  const num = (name: string) => set.get(name)?.number;

  const dataFile = text('data_file');
  if (dataFile === '') throw usage("Could not create '': No such file or directory");

  const compat = text('compat');
  let version: 2 | 3 | undefined;
  if (compat !== undefined) {
    if (compat === '0.10' || compat === 'v2') version = 2;
    else if (compat === '1.1' || compat === 'v3') version = 3;
    else throw usage(`Parameter 'version' does not accept value '${compat}'`);
  }
  const backingFormat = text('backing_fmt');
  if (backingFormat !== undefined && !BLOCK_DRIVERS.includes(backingFormat)) {
    throw usage(`Parameter 'backing-fmt' does not accept value '${backingFormat}'`);
  }
  const encryption = set.get('encryption');
  let encrypt: LuksCreateRequest | undefined;
  if (encryption !== undefined && encryption.bool) {
    throw unsupported('legacy AES-CBC encrypted images (encryption=on, encrypt.format=aes) cannot be created');
  }
  if (ENCRYPT_OPTIONS.some((n) => set.has(n))) {
    const encFormat = text('encrypt.format');
    if (encFormat === undefined) throw usage("Parameter 'encrypt.format' is missing");
    if (encFormat === 'aes') throw unsupported('legacy AES-CBC encrypted images (encrypt.format=aes) cannot be created');
    if (encFormat !== 'luks') throw usage(`Parameter 'encrypt.format' does not accept value '${encFormat}'`);
    encrypt = luksCreateRequest(set);
  }
  const prealloc = text('preallocation');
  if (prealloc !== undefined && !['off', 'metadata', 'falloc', 'full'].includes(prealloc)) {
    throw usage(`Parameter 'preallocation' does not accept value '${prealloc}'`);
  }
  const compression = text('compression_type');
  if (compression !== undefined && compression !== 'zlib' && compression !== 'zstd') {
    throw usage(`Parameter 'compression-type' does not accept value '${compression}'`);
  }
  const size = num('size');
  if (size === undefined) throw usage('Image creation needs a size parameter');
  const refcountBits = num('refcount_bits');
  return {
    size,
    ...(version !== undefined && { version }),
    ...(num('cluster_size') !== undefined && { clusterSize: num('cluster_size') }),
    ...(refcountBits !== undefined && { refcountBits: BigInt.asIntN(64, refcountBits) }),
    ...(bool('extended_l2') !== undefined && { extendedL2: bool('extended_l2') }),
    ...(compression !== undefined && { compressionType: compression as CompressionType }),
    ...(bool('lazy_refcounts') !== undefined && { lazyRefcounts: bool('lazy_refcounts') }),
    ...(dataFile !== undefined && { dataFile }),
    ...(bool('data_file_raw') !== undefined && { dataFileRaw: bool('data_file_raw') }),
    ...(prealloc !== undefined && { preallocation: prealloc as Preallocation }),
    ...(text('backing_file') !== undefined && { backingFile: text('backing_file') }),
    ...(backingFormat !== undefined && { backingFormat }),
    ...(encrypt !== undefined && { encrypt }),
  };
}

/**
 * Stage 3: the checks of qcow2_co_create, in its order, then the limits the resize step enforces
 * (image size, L1 table size) and our own limits. Returns the options with defaults filled in.
 */
export function validateCreateOptions(opts: CreateOptions): ResolvedCreateOptions {
  if (opts.encrypt !== undefined && opts.dataFile !== undefined) {
    throw unsupported('encrypted images with an external data file are not supported');
  }
  const rawSize = BigInt(opts.size);
  if (rawSize < 0n) throw usage('Image size cannot be negative');
  // qemu-img rounds the size up to whole 512-byte sectors, silently.
  const size = (rawSize + 511n) & ~511n;
  const version = opts.version ?? 3;
  if (version !== 2 && version !== 3) throw usage(`Parameter 'version' does not accept value '${String(version)}'`);
  const clusterSize = BigInt(opts.clusterSize ?? 65536);
  const extendedL2 = opts.extendedL2 ?? false;
  if (extendedL2 && version < 3) {
    throw usage('Extended L2 entries are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)');
  }
  const clusterBits = clusterSize > 0n ? clusterSize.toString(2).length - 1 : -1;
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS || 1n << BigInt(clusterBits) !== clusterSize) {
    throw usage(`Cluster size must be a power of two between ${2 ** MIN_CLUSTER_BITS} and ${2 ** (MAX_CLUSTER_BITS - 10)}k`);
  }
  if (extendedL2 && clusterBits < MIN_CLUSTER_BITS_EXTL2) {
    throw usage(`Extended L2 entries are only supported with cluster sizes of at least ${2 ** MIN_CLUSTER_BITS_EXTL2} bytes`);
  }
  let preallocation = opts.preallocation ?? 'off';
  const backingFile = opts.backingFile;
  if (backingFile !== undefined && preallocation !== 'off' && !extendedL2) {
    throw usage('Backing file and preallocation can only be used at the same time if extended_l2 is on');
  }
  if (opts.backingFormat !== undefined && backingFile === undefined) {
    throw usage('Backing format cannot be used without backing file');
  }
  const lazyRefcounts = opts.lazyRefcounts ?? false;
  if (version < 3 && lazyRefcounts) {
    throw usage('Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)');
  }
  const refcountBits = BigInt(opts.refcountBits ?? 16);
  if (refcountBits <= 0n || refcountBits > 64n || (refcountBits & (refcountBits - 1n)) !== 0n) {
    throw usage('Refcount width must be a power of two and may not exceed 64 bits');
  }
  if (version < 3 && refcountBits !== 16n) {
    throw usage('Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)');
  }
  const dataFileRaw = opts.dataFileRaw ?? false;
  const dataFile = opts.dataFile;
  if (dataFileRaw && dataFile === undefined) throw usage('data_file_raw requires data_file');
  if (dataFileRaw && backingFile !== undefined) {
    throw usage('Backing file and data_file_raw cannot be used at the same time');
  }
  // data_file_raw means the data file alone is the disk: QEMU maps it 1:1 with preallocated metadata.
  if (dataFileRaw && preallocation === 'off') preallocation = 'metadata';
  if (dataFile !== undefined && version < 3) {
    throw usage('External data files are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)');
  }
  if (dataFile === '') throw usage("Could not create '': No such file or directory");
  const compressionType = opts.compressionType ?? 'zlib';
  if (compressionType !== 'zlib') {
    if (version < 3) {
      throw usage('Non-zlib compression type is only supported with compatibility level 1.1 and above (use compat=1.1 or greater)');
    }
    if (compressionType !== 'zstd') throw usage(`Parameter 'compression-type' does not accept value '${String(compressionType)}'`);
  }
  const cs = Number(clusterSize);
  // The full header written once the image is open (qcow2_update_header) must fit in cluster 0.
  const utf8 = (text: string) => new TextEncoder().encode(text).byteLength;
  const ext = (bytes: number) => 8 + align8(bytes);
  let header = (version === 3 ? 112 : 72) + (dataFile !== undefined ? ext(utf8(dataFile)) : 0);
  header += version === 3 && cs > 4096 ? ext(FEATURE_TABLE_BYTES) : 0;
  if (header + 8 > cs) throw usage('Could not update qcow2 header: No space left on device');
  // The resize to the final size (bdrv_co_truncate, qcow2_grow_l1_table).
  if (size > INT64_MAX) throw usage('Could not resize image: Image size cannot be negative');
  if (size > MAX_DEVICE_LENGTH) throw usage(`Could not resize image: offset(${size}) exceeds maximum(${MAX_DEVICE_LENGTH})`);
  const l2Bits = BigInt(clusterBits - (extendedL2 ? 4 : 3));
  const l1Entries = (size + (1n << (BigInt(clusterBits) + l2Bits)) - 1n) >> (BigInt(clusterBits) + l2Bits);
  if (l1Entries > BigInt(MAX_L1_BYTES / 8)) {
    throw usage("The image size is too large for file format 'qcow2' (try using a larger cluster size)");
  }
  // Then the backing file is recorded (qcow2_change_backing_file): name length, then space.
  if (backingFile !== undefined) {
    const assign = `Could not assign backing file '${backingFile}' with format '${opts.backingFormat ?? ''}'`;
    if (utf8(backingFile) > MAX_BACKING_FILE_NAME) {
      throw usage(`${assign}: Invalid argument (the name is longer than ${MAX_BACKING_FILE_NAME} bytes)`);
    }
    if (opts.backingFormat !== undefined) header += ext(utf8(opts.backingFormat));
    if (header + 8 + utf8(backingFile) > cs) throw usage(`${assign}: No space left on device`);
  }
  const refcountOrder = refcountBits.toString(2).length - 1;
  return {
    size,
    version,
    clusterSize: Number(clusterSize),
    clusterBits,
    refcountBits: Number(refcountBits),
    refcountOrder,
    extendedL2,
    compressionType,
    lazyRefcounts,
    dataFile,
    dataFileRaw,
    preallocation,
    backingFile,
    backingFormat: opts.backingFormat,
    encrypt: opts.encrypt,
  };
}
