/**
 * The `-o` options of `qemu-img amend` for qcow2 (QEMU 7.2's qcow2_amend_opts), read with the
 * option syntax of `qcow2 create` (src/create/options.ts: QemuOpts, `,,` escapes, types checked
 * as each value is set), and the checks qcow2_amend_options makes of them before it changes
 * anything, in its order, with its messages.
 *
 * An option only `qemu-img create` takes is refused as qemu-img refuses it ("Invalid parameter
 * 'cluster_size'" and the hint that it is for image creation only); the `encrypt.*` options change
 * a LUKS image's key slots (src/crypto/luks-keys.ts amendLuksKeySlots), and are refused as QEMU
 * refuses them on an image without encryption.
 */
import { usage } from '../errors.js';
import type { LuksAmendOptions } from '../crypto/luks-keys.js';
import { CREATE_OPTIONS, type CreateOptionSet, parseCreateOptions, splitOptionList } from '../create/options.js';

/** What qcow2_amend_opts holds besides the encrypt.* options, and those (help text only). */
const AMEND_OPTION_NAMES: ReadonlySet<string> = new Set(['size', 'compat', 'backing_file', 'backing_fmt', 'data_file', 'data_file_raw', 'lazy_refcounts', 'refcount_bits']);

const ENCRYPT_AMEND_HELP: readonly { name: string; kind: string; help: string }[] = [
  { name: 'encrypt.iter-time', kind: 'num', help: 'Time to spend in PBKDF in milliseconds' },
  { name: 'encrypt.keyslot', kind: 'num', help: 'Select a single keyslot to modify explicitly' },
  { name: 'encrypt.new-secret', kind: 'str', help: 'New secret to set in the matching keyslots. Empty string to erase' },
  { name: 'encrypt.old-secret', kind: 'str', help: 'Select all keyslots that match this password' },
  { name: 'encrypt.state', kind: 'str', help: 'Select new state of affected keyslots (active/inactive)' },
];

/** `qemu-img amend -o help` for qcow2. */
export function amendOptionHelp(): string {
  const rows = [
    ...CREATE_OPTIONS.filter((d) => AMEND_OPTION_NAMES.has(d.name)).map((d) => ({
      name: d.name,
      kind: d.type === 'bool' ? 'bool (on/off)' : d.type === 'number' ? 'num' : d.type === 'size' ? 'size' : 'str',
      help: d.help,
    })),
    ...ENCRYPT_AMEND_HELP,
  ].sort((a, b) => (a.name < b.name ? -1 : 1));
  return `Amend options for 'qcow2':\n${rows.map((r) => `  ${`${r.name}=<${r.kind}>`.padEnd(22)} - ${r.help}`).join('\n')}\n`;
}

/** What the options ask for, typed; undefined: not given (only what is given changes). */
export interface AmendRequest {
  /** `compat` as given (checked by checkAmendRequest). */
  compat?: string;
  /** A new virtual size (0, as in QEMU, means none). */
  size?: bigint;
  backingFile?: string;
  backingFormat?: string;
  dataFile?: string;
  dataFileRaw?: boolean;
  lazyRefcounts?: boolean;
  /** `refcount_bits` as qemu_opt_get_number reads it into an int (checked by checkAmendRequest). */
  refcountBits?: number;
  /** Some encrypt.* option of qcow2_amend_opts was given. */
  encryption?: boolean;
  /** encrypt.state as given (QEMU's key slot state: active or inactive). */
  encryptState?: string;
  /** encrypt.keyslot, encrypt.iter-time (numbers), encrypt.new-secret, encrypt.old-secret (secret ids). */
  encryptKeyslot?: number;
  encryptIterTime?: number;
  encryptNewSecret?: string;
  encryptOldSecret?: string;
}

const ENCRYPT_AMEND_NAMES: ReadonlySet<string> = new Set(ENCRYPT_AMEND_HELP.map((o) => o.name));

/** Parses the `-o` lists (each already checked by isValidOptionList), each value against its type. */
export function parseAmendOptions(lists: readonly string[]): AmendRequest {
  const request: AmendRequest = {};
  // The encrypt.* options are taken out first: they only say that encryption is to be amended.
  const kept: string[] = [];
  for (const item of splitOptionList(lists.join(','))) {
    if (ENCRYPT_AMEND_NAMES.has(item.name)) {
      request.encryption = true;
      if (item.name === 'encrypt.state') request.encryptState = item.value;
      else if (item.name === 'encrypt.new-secret') request.encryptNewSecret = item.value;
      else if (item.name === 'encrypt.old-secret') request.encryptOldSecret = item.value;
      else if (item.name === 'encrypt.keyslot') request.encryptKeyslot = optionNumber(item.name, item.value);
      else if (item.name === 'encrypt.iter-time') request.encryptIterTime = optionNumber(item.name, item.value);
    } else kept.push(`${item.name}=${item.value.replaceAll(',', ',,')}`);
  }
  let set: CreateOptionSet;
  try {
    set = parseCreateOptions(kept.length === 0 ? [] : [kept.join(',')], AMEND_OPTION_NAMES);
  } catch (err) {
    throw withCreateHint(lists, asQemuOptsMessage(err));
  }
  const size = set.get('size');
  if (size?.number !== undefined && size.number !== 0n) request.size = size.number;
  const text = (name: string) => set.get(name)?.text;
  const compat = text('compat');
  if (compat !== undefined) request.compat = compat;
  const backingFile = text('backing_file');
  if (backingFile !== undefined) request.backingFile = backingFile;
  const backingFormat = text('backing_fmt');
  if (backingFormat !== undefined) request.backingFormat = backingFormat;
  const dataFile = text('data_file');
  if (dataFile !== undefined) request.dataFile = dataFile;
  const dataFileRaw = set.get('data_file_raw')?.bool;
  if (dataFileRaw !== undefined) request.dataFileRaw = dataFileRaw;
  const lazy = set.get('lazy_refcounts')?.bool;
  if (lazy !== undefined) request.lazyRefcounts = lazy;
  const bits = set.get('refcount_bits')?.number;
  if (bits !== undefined) request.refcountBits = Number(BigInt.asIntN(32, bits));
  return request;
}

/** A QemuOpts number option (QEMU_OPT_NUMBER), as the key slot options are read. */
function optionNumber(name: string, value: string): number {
  if (!/^(0|[1-9][0-9]*|0[0-7]+|0[xX][0-9a-fA-F]+)$/.test(value)) throw usage(`Parameter '${name}' expects a number`);
  const n = Number(value.startsWith('0') && value.length > 1 && !/^0[xX]/.test(value) ? parseInt(value, 8) : value);
  if (!Number.isSafeInteger(n) || n > 0x7fffffff) throw usage(`Parameter '${name}' expects a number`);
  return n;
}

/** What checkAmendRequest needs to know of the image. */
export interface AmendedImage {
  version: 2 | 3;
  encrypted: boolean;
  /** Its encryption is LUKS (crypt_method 2). */
  luks: boolean;
  hasDataFile: boolean;
  dataFileRaw: boolean;
}

/**
 * qcow2_amend_options' checks of the options before it changes anything, in its order (that of
 * qcow2_amend_opts), with its messages. Returns the target version and the key slot change asked
 * for (undefined: none).
 */
export function checkAmendRequest(request: AmendRequest, image: AmendedImage): { version: 2 | 3; keySlots: LuksAmendOptions | undefined } {
  let keySlots: LuksAmendOptions | undefined;
  if (request.encryption) {
    if (!image.encrypted) throw usage("Can't amend encryption options - encryption not present");
    if (!image.luks) throw usage('Only LUKS encryption options can be amended');
    // QEMU's visit of QCryptoBlockAmendOptionsLUKS: state is required, and one of two names.
    if (request.encryptState === undefined) throw usage("Parameter 'state' is missing");
    if (request.encryptState !== 'active' && request.encryptState !== 'inactive') throw usage(`Parameter 'state' does not accept value '${request.encryptState}'`);
    keySlots = {
      state: request.encryptState,
      ...(request.encryptKeyslot !== undefined ? { keyslot: request.encryptKeyslot } : {}),
      ...(request.encryptIterTime !== undefined ? { iterTime: request.encryptIterTime } : {}),
      ...(request.encryptNewSecret !== undefined ? { newSecret: request.encryptNewSecret } : {}),
      ...(request.encryptOldSecret !== undefined ? { oldSecret: request.encryptOldSecret } : {}),
    };
  }
  let version = image.version;
  if (request.compat !== undefined) {
    if (request.compat === '0.10' || request.compat === 'v2') version = 2;
    else if (request.compat === '1.1' || request.compat === 'v3') version = 3;
    else throw usage(`Unknown compatibility level ${request.compat}`);
  }
  if (request.dataFile !== undefined && !image.hasDataFile) throw usage('data-file can only be set for images that use an external data file');
  if (request.dataFileRaw === true && !image.dataFileRaw) throw usage('data-file-raw cannot be set on existing images');
  const bits = request.refcountBits;
  if (bits !== undefined && (bits <= 0 || bits > 64 || (bits & (bits - 1)) !== 0)) {
    throw usage('Refcount width must be a power of two and may not exceed 64 bits');
  }
  return { version, keySlots };
}

/**
 * The size message as qemu-img amend prints it (QemuOpts' own, on three lines), where `qcow2
 * create` gives the QAPI visitor's one-line form.
 */
function asQemuOptsMessage(err: unknown): unknown {
  const m = err instanceof Error ? /^Parameter '([^']+)' expects a non-negative number below 2\^64 \(optional suffix/.exec(err.message) : null;
  if (m === null) return err;
  return usage(
    `Parameter '${m[1]}' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.`,
    { cause: err },
  );
}

/**
 * qemu-img amend's message for an option it does not take: when the lists parse as create
 * options, the hint that the option is for image creation only follows (img_amend).
 */
function withCreateHint(lists: readonly string[], err: unknown): unknown {
  if (!(err instanceof Error) || !err.message.startsWith('Invalid parameter ')) return err;
  try {
    parseCreateOptions(lists);
  } catch {
    return err;
  }
  return usage(`${err.message}\nThis option is only supported for image creation`, { cause: err });
}
