/** One line for an error a crash request or check raised. */
import { isQcow2Error } from '../../errors.js';

/** One line for an error a step or a check raised; untyped errors say so. */
export function describeError(err: unknown): string {
  return isQcow2Error(err) ? err.describe() : `untyped ${(err as Error).name}: ${(err as Error).message}`;
}
