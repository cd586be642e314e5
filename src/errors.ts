/**
 * One error family for the whole project. Every failure that reaches a user is a Qcow2Error with a
 * code, and — where an image is at fault — the byte offset in the image and the field involved.
 */

export type Qcow2ErrorCode =
  /** The image contradicts the format (bad magic, impossible offsets, overlapping tables…). */
  | 'corrupt'
  /** The image is valid but uses something we do not (or refuse to) support. */
  | 'unsupported'
  /** The image ends before a structure it describes. */
  | 'truncated'
  /** The operating system failed a read, write or flush. */
  | 'io'
  /** The caller asked for something impossible (bad option, bad argument). */
  | 'usage';

export interface Qcow2ErrorDetails {
  /** Byte offset in the image file of the offending field or structure. */
  offset?: number | bigint;
  /** Name of the offending field, as the spec names it (e.g. `cluster_bits`). */
  field?: string;
  /** The underlying error, if any (an fs error for code 'io'). */
  cause?: unknown;
  /** The errno a block layer answers for this error, when errnoOf()'s rule by code is not it. */
  errno?: Errno;
}

export class Qcow2Error extends Error {
  override readonly name = 'Qcow2Error';
  readonly code: Qcow2ErrorCode;
  readonly offset: number | bigint | undefined;
  readonly field: string | undefined;
  /** Set only where errnoOf()'s rule by code would give another errno (see readOnlyError). */
  readonly errno: Errno | undefined;

  constructor(code: Qcow2ErrorCode, message: string, details: Qcow2ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.offset = details.offset;
    this.field = details.field;
    this.errno = details.errno;
  }

  /** One line for a terminal: `corrupt: cluster_bits at 0x14: …`. */
  describe(): string {
    const where =
      this.field !== undefined && this.offset !== undefined
        ? `${this.field} at ${hex(this.offset)}: `
        : this.field !== undefined
          ? `${this.field}: `
          : this.offset !== undefined
            ? `at ${hex(this.offset)}: `
            : '';
    return `${this.code}: ${where}${this.message}`;
  }
}

export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

export function corrupt(message: string, details: Qcow2ErrorDetails = {}): Qcow2Error {
  return new Qcow2Error('corrupt', message, details);
}

export function unsupported(message: string, details: Qcow2ErrorDetails = {}): Qcow2Error {
  return new Qcow2Error('unsupported', message, details);
}

export function truncated(message: string, details: Qcow2ErrorDetails = {}): Qcow2Error {
  return new Qcow2Error('truncated', message, details);
}

export function ioError(message: string, details: Qcow2ErrorDetails = {}): Qcow2Error {
  return new Qcow2Error('io', message, details);
}

export function usage(message: string, details: Qcow2ErrorDetails = {}): Qcow2Error {
  return new Qcow2Error('usage', message, details);
}

/**
 * A write, discard, truncate or flush refused because the image or file is open read-only: a
 * `usage` error that answers EPERM, as qemu's block layer does (bdrv_co_write_req_prepare()).
 */
export function readOnlyError(message: string, details: Qcow2ErrorDetails = {}): Qcow2Error {
  return new Qcow2Error('usage', message, { errno: 'EPERM', ...details });
}

export function isQcow2Error(err: unknown): err is Qcow2Error {
  return err instanceof Qcow2Error;
}

/**
 * The errno values a failed request is reported with (qemu-io's messages, NBD replies), with the
 * text glibc's strerror() gives each: what qemu-io prints after `write failed: `.
 */
const ERRNO_TEXT = {
  EIO: 'Input/output error',
  ENOSPC: 'No space left on device',
  EDQUOT: 'Disk quota exceeded',
  EFBIG: 'File too large',
  EINVAL: 'Invalid argument',
  EPERM: 'Operation not permitted',
  EACCES: 'Permission denied',
  EROFS: 'Read-only file system',
  EOVERFLOW: 'Value too large for defined data type',
  ENOTSUP: 'Operation not supported',
  ENOMEM: 'Cannot allocate memory',
  ENOENT: 'No such file or directory',
  EBADF: 'Bad file descriptor',
  ESHUTDOWN: 'Cannot send after transport endpoint shutdown',
} as const;

export type Errno = keyof typeof ERRNO_TEXT;

/** Node's names that are another name of one of ours (Linux: EOPNOTSUPP = ENOTSUP). */
const ERRNO_ALIASES: Readonly<Record<string, Errno>> = { EOPNOTSUPP: 'ENOTSUP' };

function isErrno(code: unknown): code is Errno {
  return typeof code === 'string' && Object.hasOwn(ERRNO_TEXT, code);
}

/** The errno of a Node system error (its `code`), if it is one we report. */
function systemErrno(err: unknown): Errno | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  if (isErrno(code)) return code;
  return typeof code === 'string' ? ERRNO_ALIASES[code] : undefined;
}

/**
 * The errno that qemu's block layer would answer for a failed request, for qemu-io's `… failed:`
 * lines and NBD error replies:
 *
 * | error                                   | errno                                               |
 * | --------------------------------------- | --------------------------------------------------- |
 * | any Qcow2Error with an explicit `errno` | that one (readOnlyError: EPERM)                     |
 * | `io`                                    | its cause's errno (ENOSPC, EDQUOT, EROFS, …), else EIO |
 * | `usage`                                 | EINVAL                                              |
 * | `unsupported`                           | ENOTSUP                                             |
 * | `corrupt`, `truncated`                  | EIO (qemu fails requests on a corrupt image with EIO) |
 * | a Node system error (not wrapped)       | its code, else EIO                                  |
 * | anything else                           | EIO                                                 |
 *
 * An `io` error whose cause is itself a Qcow2Error takes that error's errno.
 */
export function errnoOf(err: unknown): Errno {
  for (let depth = 0; depth < 8; depth++) {
    if (!(err instanceof Qcow2Error)) return systemErrno(err) ?? 'EIO';
    if (err.errno !== undefined) return err.errno;
    switch (err.code) {
      case 'usage':
        return 'EINVAL';
      case 'unsupported':
        return 'ENOTSUP';
      case 'corrupt':
      case 'truncated':
        return 'EIO';
      case 'io':
        if (err.cause === undefined) return 'EIO';
        err = err.cause;
    }
  }
  return 'EIO';
}

/** strerror(errno) as qemu-io prints it, e.g. `No space left on device` for ENOSPC. */
export function errnoText(errno: Errno): string {
  return ERRNO_TEXT[errno];
}
