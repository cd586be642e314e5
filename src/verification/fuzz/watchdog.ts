/**
 * The watchdog for cases that never give the event loop back: on an in-memory image every await
 * settles as a microtask, so a runaway loop in the code under test starves the oracle's timer. A
 * worker thread watches a heartbeat the driver bumps at each case; when one case has held the
 * thread for `limitMs`, the worker saves that case (seed, target, mutations, as a regression with
 * the oracle `hang`) when a store is given, says so on stderr, and ends the process (exit status 3).
 */
import { Worker } from 'node:worker_threads';

const WORKER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { beat, note, limitMs, out } = workerData;
let last = -1, since = Date.now();
setInterval(() => {
  const now = Atomics.load(beat, 0);
  if (now !== last || Atomics.load(beat, 1) === 0) { last = now; since = Date.now(); return; }
  if (Date.now() - since < limitMs) return;
  const text = Buffer.from(note.subarray(0, Atomics.load(beat, 2))).toString('utf8');
  let saved = '';
  try {
    const c = JSON.parse(text);
    if (out) {
      const name = c.target + '-hang-' + c.seed.replace(/[^A-Za-z0-9-]+/g, '_') + '-' + (now >>> 0).toString(16);
      fs.mkdirSync(out, { recursive: true });
      const signature = c.target + '/hang/a case that never returns';
      fs.writeFileSync(path.join(out, name + '.json'), JSON.stringify({ name, seed: c.seed, target: c.target, oracle: 'hang', signature,
        detail: 'the case held the thread for more than ' + limitMs / 1000 + ' s', mutations: c.mutations }, null, 2) + '\\n');
      saved = ' (saved as ' + name + ')';
    }
  } catch {}
  fs.writeSync(2, 'qcow2 fuzz: a case held the thread for more than ' + limitMs / 1000 + ' s, stopping' + saved + ': ' + text + '\\n');
  process.kill(process.pid, 'SIGKILL');
}, 250);
`;

export class Watchdog {
  /** [case counter, armed, note length]. */
  private readonly beat = new Int32Array(new SharedArrayBuffer(12));
  private readonly note = new Uint8Array(new SharedArrayBuffer(64 * 1024));
  private readonly worker: Worker;

  constructor(limitMs: number, out: string | undefined) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { beat: this.beat, note: this.note, limitMs, out } });
    this.worker.unref();
  }

  /** A case starts: what to save if it never ends. */
  enter(c: { seed: string; target: string; mutations: unknown[] }): void {
    const bytes = Buffer.from(JSON.stringify(c));
    const n = Math.min(bytes.byteLength, this.note.byteLength);
    this.note.set(bytes.subarray(0, n));
    Atomics.store(this.beat, 2, n);
    Atomics.add(this.beat, 0, 1);
    Atomics.store(this.beat, 1, 1);
  }

  /** Between cases (QEMU's commands have their own timeout). */
  idle(): void {
    Atomics.store(this.beat, 1, 0);
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
