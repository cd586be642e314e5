/**
 * The system under test: one lane per engine, each an image of its own created with the same
 * options, all driven by the same commands. Every result is compared with the byte-array model,
 * and the lanes must agree with each other on every success and failure: with the reference and
 * the optimized engine as lanes, the campaign is a differential test of the two as well.
 */
import type { Qcow2Device } from '../../engine/types.js';
import type { EngineLane } from '../engines.js';
import { CampaignFailure, ensure } from './check.js';

/**
 * What the campaign needs of an engine lane (src/verification/engines.ts): its name, how to open
 * an image, whether it takes overlapping requests at once (batches run with Promise.all on it), and
 * whether it opens LUKS images (when not said, it does not: the campaign draws no encrypted shape).
 */
export type Engine = Pick<EngineLane, 'name' | 'open' | 'concurrent'> & Partial<Pick<EngineLane, 'luks'>>;

export interface Lane {
  engine: Engine;
  dev: Qcow2Device;
  path: string;
  /** The image's passphrase when it is LUKS-encrypted. */
  passphrase: string | undefined;
}

/** Opens (or reopens) a lane's image on its engine, with the passphrase of an encrypted one. */
export function openLane(lane: Lane): Promise<Qcow2Device> {
  if (lane.passphrase === undefined) return lane.engine.open(lane.path);
  return lane.engine.open(lane.path, { keySecret: Buffer.from(lane.passphrase) });
}

export interface System {
  lanes: Lane[];
  /** Closes and reopens every lane's image. */
  reopen(): Promise<void>;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs `fn` on every lane in turn. When all succeed, their values; when all fail, the first
 * lane's error is thrown; when they disagree, that is the failure.
 */
export async function onAll<T>(sys: System, what: string, fn: (dev: Qcow2Device, lane: Lane) => Promise<T>): Promise<T[]> {
  const outcomes: Outcome<T>[] = [];
  for (const lane of sys.lanes) {
    try {
      outcomes.push({ ok: true, value: await fn(lane.dev, lane) });
    } catch (error) {
      if (error instanceof CampaignFailure) throw error;
      outcomes.push({ ok: false, error });
    }
  }
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length === 0) return outcomes.map((o) => (o as { value: T }).value);
  const first = failed[0] as { error: unknown };
  ensure(
    failed.length === outcomes.length,
    `engines disagree on ${what}: ${outcomes.map((o, i) => `${sys.lanes[i]!.engine.name} ${o.ok ? 'succeeded' : `failed (${messageOf(o.error)})`}`).join(', ')}`,
  );
  throw first.error;
}

/** Bytes filled from a small seed: a repeated byte, or a pattern varied enough to defeat compression. */
export function patternBytes(length: number, seed: number, compressible: boolean): Uint8Array {
  const out = new Uint8Array(length);
  if (compressible) return out.fill((seed % 255) + 1);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}
