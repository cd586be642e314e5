/**
 * What a fuzz case runs: the library functions behind the CLI's commands, in process, on the
 * mutated image held in memory. Engines are opened through the composition root (src/device/open.ts)
 * as the CLI opens them, with the untrusted-image policy (names of backing and data files are not
 * followed) and no backing file; the opener's placeholder file is swapped for the in-memory image.
 * A target throws what the code under test throws (the oracles judge it) and returns problems of
 * its own (a repair that made things worse, data that did not read back).
 */
import { checkAndRepair, checkImage, type CheckReport } from '../../check/index.js';
import { openQcow2 } from '../../device/open.js';
import type { Qcow2Device } from '../../engine/types.js';
import { imageInfo } from '../../image/info.js';
import { readMetadata } from '../../image/metadata.js';
import { MemoryFile } from '../../io/memory-file.js';
import { mapJsonEntries } from '../../map/map.js';
import type { MapLayer } from '../../map/types.js';
import { type CaseState, GuardFile, SharedBytesFile } from './guard-file.js';

/** The checker's messages are not judged, only its counts and failure: none are built. */
const UNHEARD = { quiet: true };

/**
 * A read case's bounds (a case must stay well under its 2 s): guest bytes read (data extents only,
 * as convert reads), and the guest range whose block status is asked, in windows.
 */
const READ_BUDGET = 4 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
const STATUS_WINDOW = 64 * 1024 * 1024;
const STATUS_BUDGET = 512 * 1024 * 1024;

export class CaseEnv {
  readonly files: GuardFile[] = [];
  readonly violations: string[] = [];
  /** Check reports whose `failure` wraps an error (the oracle looks inside). */
  readonly reports: CheckReport[] = [];
  /** Shared by the case's files (guard-file.ts): set when the oracle gives up on the case. */
  readonly state: CaseState = { abandoned: false, ops: 0 };

  constructor(
    public bytes: Uint8Array,
    /** An empty file the opener opens by name; the in-memory image stands in for it. */
    private readonly placeholder: string,
  ) {}

  /** The image as a file; a writable one hands what was written to the next open when closed. */
  image(readOnly: boolean, onClose?: () => Promise<void>): GuardFile {
    // A read-only file shares the case's bytes (no copy); a writable one works on its own copy.
    const inner = readOnly ? new SharedBytesFile(this.bytes) : new MemoryFile(this.bytes, false);
    const file = new GuardFile(inner, readOnly, 'image', this.violations, this.state, async (g) => {
      if (!readOnly) this.bytes = g.memory.snapshot();
      await onClose?.();
    });
    this.files.push(file);
    return file;
  }

  /** The image on the engine the CLI runs, opened as the CLI opens it (untrusted, no backing). */
  engine(readOnly: boolean, snapshot?: string): Promise<Qcow2Device> {
    return openQcow2(this.placeholder, {
      readOnly,
      untrusted: true,
      backing: null,
      ...(snapshot !== undefined ? { snapshot } : {}),
      wrapFile: (file, role) => (role === 'image' ? this.image(readOnly, () => file.close()) : file),
    });
  }
}

export interface Target {
  name: string;
  what: string;
  /** Problems found beyond thrown errors (each one is a finding). */
  run(env: CaseEnv): Promise<string[]>;
}

async function withDevice<T>(open: Promise<Qcow2Device>, use: (d: Qcow2Device) => Promise<T>): Promise<T> {
  const device = await open;
  try {
    return await use(device);
  } finally {
    await device.close();
  }
}

/** Runs `use` on a file of the case's image, closed after. */
async function withFile<F extends { close(): Promise<void> }, T>(file: F, use: (f: F) => Promise<T>): Promise<T> {
  try {
    return await use(file);
  } finally {
    await file.close();
  }
}

/** Whether the check finds the image corrupt (or cannot check it at all). */
async function checkFindsCorruption(bytes: Uint8Array): Promise<boolean> {
  const file = new MemoryFile(bytes, true);
  try {
    const r = await checkImage(file, UNHEARD);
    return r.corruptions > 0 || r.checkErrors > 0 || r.failure !== undefined;
  } catch {
    return true;
  } finally {
    await file.close();
  }
}

/** Reads every data extent of the device (up to the budget) into one reused buffer. */
async function readAll(device: Qcow2Device): Promise<void> {
  const buffer = new Uint8Array(READ_CHUNK);
  let budget = READ_BUDGET;
  const size = device.virtualSize;
  await device.readInto(0, buffer.subarray(0, Math.min(size, 64 * 1024)));
  for (let pos = 0; pos < Math.min(size, STATUS_BUDGET) && budget > 0; ) {
    const extents = await device.blockStatus(pos, Math.min(size - pos, STATUS_WINDOW));
    if (extents.length === 0) break;
    for (const e of extents) {
      if (!e.data || e.zero) continue;
      for (let at = e.start; at < e.start + e.length && budget > 0; at += READ_CHUNK) {
        const n = Math.min(READ_CHUNK, e.start + e.length - at, budget);
        await device.readInto(at, buffer.subarray(0, n));
        budget -= n;
      }
    }
    const last = extents[extents.length - 1]!;
    pos = last.start + last.length;
  }
}

function memoryLayer(device: Qcow2Device, size: number): MapLayer {
  const holes = { size, seekData: (o: number) => (o < size ? o : null), seekHole: (o: number) => (o < size ? size : null) };
  return {
    format: 'qcow2',
    size: device.virtualSize,
    extents: (offset, length) => device.mapExtents(offset, length),
    files: { image: { name: 'fuzz.qcow2', holes } },
    metadataPreallocation: false,
    backing: undefined,
  };
}

const PATTERN = 0x5a;

export const TARGETS: readonly Target[] = [
  {
    name: 'open',
    what: 'qcow2 info: metadata read and described',
    async run(env) {
      await withFile(env.image(true), async (file) => {
        const meta = await readMetadata(file);
        imageInfo(meta, 'fuzz.qcow2', meta.fileSize);
      });
      return [];
    },
  },
  {
    name: 'read',
    what: 'open on the engine, read every data extent (convert to a null sink)',
    async run(env) {
      await withDevice(env.engine(true), readAll);
      return [];
    },
  },
  {
    name: 'map',
    what: 'qcow2 map (JSON entries)',
    async run(env) {
      await withDevice(env.engine(true), (d) => mapJsonEntries(memoryLayer(d, env.bytes.byteLength)));
      return [];
    },
  },
  {
    name: 'check',
    what: 'qcow2 check',
    async run(env) {
      await withFile(env.image(true), async (file) => env.reports.push(await checkImage(file, UNHEARD)));
      return [];
    },
  },
  {
    name: 'repair',
    what: 'qcow2 check -r all, then check again: a repair never makes things worse',
    async run(env) {
      const original = env.bytes;
      const file = env.image(false);
      let first: CheckReport;
      let again: CheckReport;
      try {
        let final: CheckReport;
        ({ first, final } = await checkAndRepair(file, { repair: 'all', ...UNHEARD }));
        // After a repair, checkAndRepair's second pass is the check after it.
        again = final !== first ? final : await checkImage(file, UNHEARD);
        env.reports.push(first, again);
      } finally {
        await file.close();
      }
      const problems: string[] = [];
      if (!first.failure && again.failure) problems.push(`the check after the repair failed: ${again.failure.describe()}`);
      // Worse: more corruptions after the repair than a plain check finds before it. (Not the repair
      // pass's own counts: what it found depends on what it had repaired by then, and what it says
      // it left is an estimate, in QEMU as here: on test/fuzz/cases/repair-invariant-v3-c512-f80b1950
      // both find 27, repair 21, expect 6 and find 7; on repair-invariant-v3-c512-rc4-f80b1950 the
      // check finds 7096, the repair pass 4813 and the check after it 7060.)
      if (!first.failure && !again.failure && again.corruptions > 0) {
        // Only then is the plain check run (it costs a pass): on the image as it was.
        const found = await withFile(new SharedBytesFile(original), (f) => checkImage(f, UNHEARD));
        const before = found.failure ? Number.POSITIVE_INFINITY : found.corruptions;
        if (again.corruptions > before) problems.push(`corruptions went from ${before} to ${again.corruptions} after check -r all`);
      }
      return problems;
    },
  },
  {
    name: 'write',
    what: 'open writable, write, flush, close, reopen, read back',
    async run(env) {
      const original = env.bytes;
      const writes: Array<[number, number]> = [];
      await withDevice(env.engine(false), async (d) => {
        const C = d.clusterSize;
        const size = d.virtualSize;
        for (const at of [0, Math.floor(size / 2 / C) * C + 512, Math.max(0, size - 3 * 512)]) {
          const length = Math.min(4096, size - at);
          if (length <= 0 || at % 512 !== 0) continue;
          await d.write(at, new Uint8Array(length).fill(PATTERN));
          writes.push([at, length]);
        }
        await d.flush();
      });
      const problems: string[] = [];
      await withDevice(env.engine(true), async (d) => {
        for (const [at, length] of writes) {
          const got = await d.read(at, length);
          const bad = got.findIndex((b) => b !== PATTERN);
          if (bad >= 0) problems.push(`a flushed write of ${length} bytes at 0x${at.toString(16)} reads back 0x${got[bad]!.toString(16)} at +${bad}`);
        }
      });
      // On an image whose refcounts call a cluster in use free, a write may be given that cluster
      // and land over other data, in QEMU as here: what reads back is promised on sound images only.
      if (problems.length > 0 && (await checkFindsCorruption(original))) return [];
      return problems;
    },
  },
  {
    name: 'snapshot',
    what: 'qcow2 snapshot -l, open a snapshot read-only, -a (apply) the first, then check',
    async run(env) {
      const list = await withDevice(env.engine(true), (d) => d.listSnapshots());
      const first = list[0];
      if (first === undefined) return [];
      await withDevice(env.engine(true, first.id), (d) => d.read(0, Math.min(d.virtualSize, 65536)));
      await withDevice(env.engine(false), (d) => d.applySnapshot(first.id));
      await withFile(env.image(true), async (file) => env.reports.push(await checkImage(file, UNHEARD)));
      return [];
    },
  },
];

export function targetNamed(name: string): Target | undefined {
  return TARGETS.find((t) => t.name === name);
}
