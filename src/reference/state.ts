/**
 * The reference engine's state: the open files and the header, which is the root of everything
 * else and is rewritten whole whenever it changes. Nothing below the header is kept in memory.
 */
import type { Qcow2State } from '../qcow2/state.js';
import type { DurableFile } from './durable-file.js';

export interface RefState extends Qcow2State {
  /** Every write flushed before it returns (durable-file.ts). */
  file: DurableFile;
  dataFile: DurableFile | undefined;
}
