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
}

export class Qcow2Error extends Error {
  override readonly name = 'Qcow2Error';
  readonly code: Qcow2ErrorCode;
  readonly offset: number | bigint | undefined;
  readonly field: string | undefined;

  constructor(code: Qcow2ErrorCode, message: string, details: Qcow2ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.offset = details.offset;
    this.field = details.field;
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

export function isQcow2Error(err: unknown): err is Qcow2Error {
  return err instanceof Qcow2Error;
}
