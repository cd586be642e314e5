/** Argument parsing shared by subcommands: node's parseArgs, with usage errors as Qcow2Errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type Qcow2Error, usage } from '../errors.js';
import { usageLine } from './commands.js';

/**
 * A usage error about the shape of a command line (an unknown option, a missing operand): the
 * message, then the command's synopsis from src/cli/commands.ts, on one line.
 */
export function commandLineError(command: string, message: string): Qcow2Error {
  return usage(`${command}: ${message}; usage: ${usageLine(command)}`);
}

type Options = NonNullable<ParseArgsConfig['options']>;
/** What parse() returns (named, so that the build's declarations can say it). */
export type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;

export function parse<T extends Options>(args: string[], options: T, command: string): Parsed<T> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw commandLineError(command, (err as Error).message);
  }
}

/** `--output=human|json`, as qemu-img takes it. */
export function outputFormat(value: string | undefined, command: string): 'human' | 'json' {
  if (value === undefined || value === 'human') return 'human';
  if (value === 'json') return 'json';
  throw usage(`${command}: --output must be 'human' or 'json', not '${value}'`);
}

export function onePositional(positionals: string[], what: string, command: string): string {
  if (positionals.length !== 1 || positionals[0] === undefined) {
    throw commandLineError(command, `expected exactly one ${what}, got ${positionals.length}`);
  }
  return positionals[0];
}
