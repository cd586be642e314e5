/**
 * Crash workloads: an image made by qemu-img and a list of guest requests, run once on an engine
 * over a RecordingFile. The result is the file's log plus, placed in it, what the guest was told:
 * where each request began (its bytes are unsettled from then until a flush returns) and where
 * each flush returned (everything written before it must survive any later crash).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Qcow2Device } from '../../engine/types.js';
import { RecordingFile } from '../../io/recording-file.js';
import type { FileOp } from '../../io/recording-file.js';
import { runTool } from '../../tools/run.js';
import type { Model } from '../campaign/model.js';
import { modelOf, modelStep, rangeOf, runStep } from './guest-ops.js';
import type { Expectation, GuestOp, Open, Workload } from './types.js';

/** A guest-visible event placed in the file's log. */
export type GuestEvent =
  /** A request that may change `[from, to)` began when the log had `at` entries (`size`: a resize to it). */
  | { kind: 'began'; at: number; from: number; to: number; size?: number }
  /** A flush returned when the log had `at` entries; `bytes` is what the guest wrote until then. */
  | { kind: 'flushed'; at: number; bytes: Uint8Array };

export interface Recording {
  workload: Workload;
  initial: Uint8Array;
  /** The external data file's bytes before the workload, when there is one. */
  initialData: Uint8Array | undefined;
  log: FileOp[];
  events: GuestEvent[];
  /** The guest's contents when the image was created (before any request). */
  start: Uint8Array;
}

/** A scratch folder, in memory where the machine has one. */
export async function scratchDir(prefix: string): Promise<string> {
  return mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), prefix));
}

export async function tool(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await runTool(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Creates the workload's image in `dir` with QEMU's tools (run there: QEMU 7.2 resolves a data
 * file's name against the working directory); returns its path.
 */
async function createImage(w: Workload, dir: string): Promise<string> {
  await tool('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', w.options, 'image.qcow2', String(w.size)], dir);
  for (const b of w.bitmaps ?? []) {
    await tool('qemu-img', ['bitmap', '--add', ...(b.granularity ? ['-g', String(b.granularity)] : []), ...(b.disabled ? ['--disable'] : []), 'image.qcow2', b.name], dir);
  }
  if (w.before?.length) await tool('qemu-io', ['-f', 'qcow2', ...w.before.flatMap((c) => ['-c', c]), 'image.qcow2'], dir);
  return join(dir, 'image.qcow2');
}

/** The guest bytes of an image, read by QEMU (`qemu-img convert -O raw`). */
async function guestBytes(path: string, dir: string): Promise<Uint8Array> {
  const raw = join(dir, 'guest.raw');
  await tool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, raw], dir);
  const bytes = new Uint8Array(await readFile(raw));
  await rm(raw);
  return bytes;
}

const made = new Map<string, Promise<{ image: Uint8Array; data: Uint8Array | undefined; guest: Uint8Array }>>();

/**
 * The workload's image at `dir/image.qcow2`, as QEMU made it (made once per process and copied),
 * and its guest bytes as QEMU reads them.
 */
export async function prepareImage(w: Workload, dir: string): Promise<{ path: string; start: Uint8Array; image: Uint8Array; data: Uint8Array | undefined }> {
  const key = JSON.stringify([w.options, w.size, w.bitmaps, w.before, w.dataFile]);
  let template = made.get(key);
  if (!template) {
    template = (async () => {
      const own = await scratchDir('qcow2-template-');
      try {
        const path = await createImage(w, own);
        const data = w.dataFile === undefined ? undefined : new Uint8Array(await readFile(join(own, w.dataFile)));
        return { image: new Uint8Array(await readFile(path)), data, guest: await guestBytes(path, own) };
      } finally {
        await rm(own, { recursive: true, force: true });
      }
    })();
    made.set(key, template);
    template.catch(() => made.delete(key));
  }
  const { image, data, guest } = await template;
  const path = join(dir, 'image.qcow2');
  await writeFile(path, image);
  if (data && w.dataFile !== undefined) await writeFile(join(dir, w.dataFile), data);
  return { path, start: guest.slice(), image, data };
}

/** Runs the workload on `open`'s engine, recording every write and flush of the image (and data) file. */
export async function record(w: Workload, open: Open): Promise<Recording> {
  const dir = await scratchDir('qcow2-crash-');
  try {
    const { path, start, image, data } = await prepareImage(w, dir);
    // One log for the image and its data file, in the order the engine issued their operations.
    const log: FileOp[] = [];
    // (De)compression on the calling thread, as the judge opens the states.
    const dev = await open(path, { noFlush: true, compressionThreads: 0, wrapFile: (f, role) => new RecordingFile(f, log, role) });
    const model = modelOf(w, start);
    const events: GuestEvent[] = [];
    for (const op of w.ops) await apply(dev, model, op, log, events);
    await dev.close();
    events.push({ kind: 'flushed', at: log.length, bytes: model.bytes.slice() });
    return { workload: w, initial: image, initialData: data, log, events, start };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs one request, placing where it began (and, for a flush, where it returned) in the log. */
async function apply(dev: Qcow2Device, model: Model, op: GuestOp, log: FileOp[], events: GuestEvent[]): Promise<void> {
  const range = rangeOf(op, model);
  if (range) events.push({ kind: 'began', at: log.length, from: range[0], to: range[1], ...(op.op === 'resize' ? { size: op.size } : {}) });
  await runStep(dev, op);
  modelStep(model, op);
  if (op.op === 'flush') events.push({ kind: 'flushed', at: log.length, bytes: model.bytes.slice() });
}

/**
 * What a crash before log entry `end` must leave: the guest bytes of the last flush that returned
 * before it, and the ranges of requests begun since (they may read either way).
 */
export function expectation(r: Recording, end: number): Expectation {
  let bytes = r.start;
  let since = 0;
  for (const e of r.events) if (e.kind === 'flushed' && e.at <= end) ({ bytes, at: since } = e);
  const unsettled: [number, number][] = [];
  const touched: [number, number][] = [];
  const sizes = [bytes.byteLength];
  for (const e of r.events) {
    if (e.kind !== 'began' || e.at >= end) continue;
    if (e.size === undefined) touched.push([e.from, e.to]);
    if (e.at < since) continue;
    unsettled.push([e.from, e.to]);
    if (e.size !== undefined) sizes.push(e.size);
  }
  return { bytes, unsettled, sizes, ...(r.workload.bitmaps ? { bitmaps: r.workload.bitmaps, touched } : {}) };
}
