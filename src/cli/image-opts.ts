/**
 * `--object` and `--image-opts`, as qemu-img and qemu-io take them, parsed once for every command
 * that opens an image:
 * - `--object secret,id=ID,data=TEXT` or `--object secret,id=ID,file=PATH`, optionally
 *   `format=raw|base64` (QEMU's secret object; other object types are refused);
 * - `--image-opts`: the image operand is then an option list,
 *   `driver=qcow2,file.filename=PATH,encrypt.key-secret=ID` (also `file.driver=file`,
 *   `encrypt.format=luks`), instead of a file name; `backing.encrypt.key-secret=ID` (and
 *   `backing.backing.…`) unlocks an encrypted backing file, as QEMU's nested backing options.
 * Option lists use QEMU's syntax: comma-separated `key=value`, a doubled comma is a comma.
 * Secrets are held in Buffers that `dispose()` zero-fills; each image gets its own copy.
 */
import { readFileSync } from 'node:fs';
import { unsupported, usage } from '../errors.js';

/** The parseArgs entries every image-opening command adds to its own. */
export const IMAGE_OPTS_OPTIONS = {
  object: { type: 'string', multiple: true },
  'image-opts': { type: 'boolean' },
} as const;

/** QEMU's option list: `a=b,c=d`, ',,' for a comma; a first item without '=' is returned as `implied`. */
export function splitOptionList(text: string, impliedKey?: string): Map<string, string> {
  const items: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === ',' && text[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (ch === ',') {
      items.push(cur);
      cur = '';
    } else cur += ch;
  }
  items.push(cur);
  const out = new Map<string, string>();
  items.forEach((item, i) => {
    if (item === '') return;
    const eq = item.indexOf('=');
    if (eq === -1) {
      if (i === 0 && impliedKey !== undefined) out.set(impliedKey, item);
      else throw usage(`Invalid parameter '${item}'`);
      return;
    }
    out.set(item.slice(0, eq), item.slice(eq + 1));
  });
  return out;
}

export class Secrets {
  private readonly byId = new Map<string, Buffer>();

  /** Parses every `--object`. */
  constructor(objects: readonly string[] | undefined) {
    for (const text of objects ?? []) {
      const o = splitOptionList(text, 'qom-type');
      const type = o.get('qom-type');
      if (type !== 'secret') throw unsupported(`--object: only 'secret' objects are supported, not '${type ?? text}'`);
      const id = o.get('id');
      if (id === undefined || id === '') throw usage("Parameter 'id' is missing");
      for (const k of o.keys()) {
        if (!['qom-type', 'id', 'data', 'file', 'format'].includes(k)) throw usage(`Property 'secret.${k}' not found`);
      }
      const data = o.get('data');
      const file = o.get('file');
      if (data !== undefined && file !== undefined) throw usage("'file' and 'data' are mutually exclusive");
      if (data === undefined && file === undefined) throw usage("Either 'file' or 'data' must be provided");
      let raw: Buffer;
      if (data !== undefined) raw = Buffer.from(data, 'utf8');
      else {
        try {
          raw = readFileSync(file as string);
        } catch (err) {
          throw usage(`Unable to read ${file}: ${(err as NodeJS.ErrnoException).message}`, { cause: err });
        }
      }
      const format = o.get('format') ?? 'raw';
      if (format === 'base64') {
        const text64 = raw.toString('latin1').trim();
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text64) || text64.length % 4 !== 0) {
          raw.fill(0);
          throw usage('Malformed base64 secret');
        }
        const decoded = Buffer.from(text64, 'base64');
        raw.fill(0);
        raw = decoded;
      } else if (format !== 'raw') throw usage(`Invalid parameter 'format': '${format}' is not 'raw' or 'base64'`);
      if (this.byId.has(id)) throw usage(`attempt to add duplicate property '${id}' to object (type 'container')`);
      this.byId.set(id, raw);
    }
  }

  /** A copy of secret `id` (the caller zero-fills it), or QEMU's error. */
  copy(id: string): Uint8Array {
    const s = this.byId.get(id);
    if (s === undefined) throw usage(`No secret with id '${id}'`);
    return Buffer.from(s);
  }

  dispose(): void {
    for (const s of this.byId.values()) s.fill(0);
    this.byId.clear();
  }
}

/** An image operand, resolved. */
export interface ImageArg {
  /** The operand as given (qemu-img's messages name the image so). */
  text: string;
  /** The file name (the operand, or file.filename of --image-opts). */
  path: string;
  /** driver= of --image-opts. */
  format: 'raw' | 'qcow2' | undefined;
  /** The passphrase named by encrypt.key-secret (the caller zeroes it after opening). */
  keySecret: Uint8Array | undefined;
  /** Those of the backing chain (`backing.encrypt.key-secret`, `backing.backing.…`), nearest first. */
  backingKeys: (Uint8Array | undefined)[];
}

/** What an image operand adds to an open's options (src/device/open.ts OpenImageOptions): its passphrases. */
export function keyOptions(image: ImageArg): { keySecret?: Uint8Array; backingKeys?: (Uint8Array | undefined)[] } {
  return { ...(image.keySecret ? { keySecret: image.keySecret } : {}), ...(image.backingKeys.length > 0 ? { backingKeys: image.backingKeys } : {}) };
}

/** `encrypt.key-secret`, `backing.encrypt.key-secret`, `backing.backing.encrypt.key-secret`, …: the depth, or -1. */
function keySecretDepth(key: string): number {
  const m = /^((?:backing\.)*)encrypt\.key-secret$/.exec(key);
  return m === null ? -1 : m[1]!.length / 'backing.'.length;
}

/**
 * Resolves an image operand: a file name, or with --image-opts an option list. `keySecretId` is
 * `encrypt.key-secret` given some other way (create's and convert's -o).
 */
export function imageArg(operand: string, imageOpts: boolean, secrets: Secrets, keySecretId?: string): ImageArg {
  if (!imageOpts) return { text: operand, path: operand, format: undefined, keySecret: keySecretId === undefined ? undefined : secrets.copy(keySecretId), backingKeys: [] };
  const o = splitOptionList(operand);
  for (const k of o.keys()) {
    if (!['driver', 'file.filename', 'file.driver', 'filename', 'encrypt.format'].includes(k) && keySecretDepth(k) < 0) {
      throw unsupported(`--image-opts: option '${k}' is not supported`);
    }
  }
  const driver = o.get('driver');
  if (driver === undefined) throw usage("Parameter 'driver' is missing");
  if (driver !== 'qcow2' && driver !== 'raw') throw unsupported(`--image-opts: driver '${driver}' is not supported (qcow2 and raw are)`);
  const fileDriver = o.get('file.driver');
  if (fileDriver !== undefined && fileDriver !== 'file') throw unsupported(`--image-opts: file.driver '${fileDriver}' is not supported (file is)`);
  const encFormat = o.get('encrypt.format');
  if (encFormat !== undefined && encFormat !== 'luks') throw unsupported(`--image-opts: encrypt.format '${encFormat}' is not supported (luks is)`);
  const path = o.get('file.filename') ?? o.get('filename');
  if (path === undefined) throw usage("A block device must be specified for \"file\"");
  const id = o.get('encrypt.key-secret') ?? keySecretId;
  const backingKeys: (Uint8Array | undefined)[] = [];
  for (const [k, v] of o) {
    const depth = keySecretDepth(k);
    if (depth > 0) backingKeys[depth - 1] = secrets.copy(v);
  }
  return { text: operand, path, format: driver, keySecret: id === undefined ? undefined : secrets.copy(id), backingKeys: Array.from(backingKeys) };
}

/** One image operand and the `--object` list, resolved at once: the secrets are kept in the operand only. */
export function resolveImageArg(operand: string, objects: readonly string[] | undefined, imageOpts: boolean): ImageArg {
  const secrets = new Secrets(objects);
  try {
    return imageArg(operand, imageOpts, secrets);
  } finally {
    secrets.dispose();
  }
}

/** Zero-fills the image operands' secrets (after the images are open). */
export function forgetSecrets(...args: (ImageArg | undefined)[]): void {
  for (const a of args) {
    a?.keySecret?.fill(0);
    for (const k of a?.backingKeys ?? []) k?.fill(0);
  }
}
