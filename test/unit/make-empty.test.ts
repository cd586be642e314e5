/**
 * makeEmpty (src/qcow2/zero-discard.ts, QEMU's qcow2_make_empty) on both engines: every cluster of
 * the active disk becomes unallocated (not zero-flagged), in v2, v3 and extended L2 images, with
 * and without a backing file; the image then reads as its backing file, and our check finds its
 * refcounts exact (no leak, no corruption). qemu-img's own view of it is in
 * test/interop/commit-parity.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkImage } from '../../src/check/index.js';
import { createImage } from '../../src/create/create.js';
import type { CreateOptions } from '../../src/create/options.js';
import type { Qcow2Device } from '../../src/engine/types.js';
import { NodeFile } from '../../src/io/node-file.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';

let dir = '';
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-make-empty-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ENGINES: Record<string, (path: string) => Promise<Qcow2Device>> = {
  reference: (path) => openReference(path),
  optimized: (path) => openOptimized(path),
};

const LAYOUTS: Record<string, Omit<CreateOptions, 'size'>> = {
  v3: {},
  v2: { version: 2 },
  'extended L2': { extendedL2: true, clusterSize: 32768 },
  'small clusters': { clusterSize: 512 },
};

const SIZE = 1 << 20;

describe.each(Object.keys(ENGINES))('makeEmpty on the %s engine', (engine) => {
  const open = ENGINES[engine] as (path: string) => Promise<Qcow2Device>;
  for (const [layout, options] of Object.entries(LAYOUTS)) {
    for (const backed of [false, true]) {
      it(`${layout}, ${backed ? 'over a backing file' : 'alone'}`, async () => {
        const k = n++;
        const base = join(dir, `base${k}.qcow2`);
        const top = join(dir, `top${k}.qcow2`);
        await createImage(base, { ...options, size: SIZE });
        const b = await open(base);
        await b.write(0, new Uint8Array(SIZE).fill(0x5a));
        await b.close();
        await createImage(top, { ...options, size: SIZE, ...(backed ? { backingFile: base, backingFormat: 'qcow2' } : {}) });
        const dev = await open(top);
        await dev.write(4096, new Uint8Array(70000).fill(1));
        await dev.writeZeroes(256 * 1024, 128 * 1024);
        if (dev.capabilities.compressedWrites) await dev.writeCompressed(512 * 1024, new Uint8Array(dev.clusterSize).fill(2));
        await dev.makeEmpty();
        expect(await dev.mapExtents(0, SIZE)).toEqual([{ start: 0, length: SIZE, kind: 'unallocated' }]);
        const read = await dev.read(0, SIZE);
        expect(read.every((x) => x === (backed ? 0x5a : 0))).toBe(true);
        await dev.close();
        const again = await open(top);
        expect(await again.mapExtents(0, SIZE)).toEqual([{ start: 0, length: SIZE, kind: 'unallocated' }]);
        await again.close();
        const file = await NodeFile.open(top, { readOnly: true });
        try {
          const report = await checkImage(file);
          expect(report.corruptions).toBe(0);
          expect(report.leaks).toBe(0);
        } finally {
          await file.close();
        }
      });
    }
  }
});
