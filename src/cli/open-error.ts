/**
 * qemu-img's messages for an image it cannot open (img_open), as usage errors: a missing file
 * (`Could not open 'NAME': Could not open 'NAME': No such file or directory`), also one further
 * down its backing chain (chainOpenError), and a file opened as qcow2 that is not one
 * (`Could not open 'NAME': Image is not in qcow2 format`), an encrypted image whose passphrase is
 * missing or wrong (`Could not open 'NAME': Invalid password, cannot unlock any keyslot`, NAME the
 * operand as given). Other failures are kept as they are.
 */
import { isQcow2Error, type Qcow2Error, usage } from '../errors.js';
import { linkedPath } from '../engine/linked-path.js';
import { readMetadata } from '../image/metadata.js';
import { NodeFile } from '../io/node-file.js';
import { MAX_BACKING_DEPTH } from '../limits.js';

/** qemu-img's message when `err` says the file is not a qcow2 image (bad magic), else undefined. */
export function notQcow2Error(filename: string, err: unknown): Qcow2Error | undefined {
  return isQcow2Error(err) && err.field === 'magic' ? usage(`Could not open '${filename}': Image is not in qcow2 format`) : undefined;
}

/**
 * qemu-img's message when an encrypted image (or a layer of its chain) cannot be unlocked: its
 * passphrase missing or wrong, after `Could not open 'OPERAND': ` (the operand as given, the
 * option list of --image-opts included); else undefined.
 */
export function keyOpenError(operand: string, err: unknown): Qcow2Error | undefined {
  if (!isQcow2Error(err) || err.field !== 'encrypt.key-secret') return undefined;
  return usage(`Could not open '${operand}': ${err.message}`, { cause: err });
}

/** `operand`: the image as the command line gives it (default `filename`), for the messages that name it so. */
export function explainOpenError(filename: string, err: unknown, operand = filename): unknown {
  const key = keyOpenError(operand, err);
  if (key !== undefined) return key;
  const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return usage(`Could not open '${filename}': Could not open '${filename}': No such file or directory`);
  return notQcow2Error(filename, err) ?? err;
}

/** Runs `open`, turning its failure into qemu-img's message where there is one. */
export async function openOrExplain<T>(filename: string, open: () => Promise<T>, operand = filename): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw explainOpenError(filename, err, operand);
  }
}

/**
 * qemu-img's message for an image (at `path`, opened as `format` or probed) that cannot be opened,
 * after `prefix` (`Could not open 'NAME': `): a missing file anywhere in its backing chain
 * (`Could not open backing file: ` once per layer above it) or a file that is not qcow2; other
 * errors as they are.
 */
export async function chainOpenError(prefix: string, path: string, format: string | undefined, err: unknown): Promise<unknown> {
  if (isQcow2Error(err) && err.field === 'encrypt.key-secret') return usage(`${prefix}${err.message}`, { cause: err });
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code === 'ENOENT') {
    const missing = cause.path ?? path;
    const inner = 'Could not open backing file: '.repeat(await depthOf(path, missing));
    return usage(`${prefix}${inner}Could not open '${missing}': No such file or directory`, { cause: err });
  }
  if (format === 'qcow2' && isQcow2Error(err) && err.field === 'magic') return usage(`${prefix}Image is not in qcow2 format`, { cause: err });
  return err;
}

/** How far below the image at `path` its chain names `missing` (0: the image itself; the chain's depth when not found). */
async function depthOf(path: string, missing: string): Promise<number> {
  let depth = 0;
  for (let at = path; at !== missing && depth < MAX_BACKING_DEPTH; depth++) {
    const name = await storedBackingName(at);
    if (name === undefined) break;
    at = linkedPath(at, name, 'backing file', {});
  }
  return depth;
}

/** The backing file name a qcow2 image stores, if it can be read. */
async function storedBackingName(path: string): Promise<string | undefined> {
  const file = await NodeFile.open(path, { readOnly: true }).catch(() => undefined);
  if (file === undefined) return undefined;
  try {
    return (await readMetadata(file)).backingFile;
  } catch {
    return undefined;
  } finally {
    await file.close();
  }
}
