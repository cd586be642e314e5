/**
 * Regressions: file handles left open on a failure path (Node then warned "Closing file
 * descriptor N on garbage collection").
 * - An image with an external data file whose backing file cannot be opened: both engines used to
 *   leave the data file's handle open. The open must fail with a typed error and leave no file
 *   descriptor behind.
 * - A close whose final flush fails (a failing disk): the files used to stay open. The close must
 *   report the failure and still close every file.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQcow2 } from '../../src/device/open.js';
import { isQcow2Error } from '../../src/errors.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';
import { FaultFile } from '../../src/io/fault-file.js';
import { qemuImg, requireTool } from '../support/tools.js';

let dir: string;
let image: string;

async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

beforeAll(async () => {
  await requireTool('qemu-img');
  dir = await mkdtemp(join(tmpdir(), 'open-cleanup-'));
  image = join(dir, 'img.qcow2');
  await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'data.raw')}`, '-b', 'missing.qcow2', '-F', 'qcow2', '-u', image, '64M']);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const openers = {
  reference: (p: string) => openReference(p, { readOnly: true }),
  optimized: (p: string) => openOptimized(p, { readOnly: true }),
  'composition root': (p: string) => openQcow2(p, { readOnly: true }),
};

describe('a failed backing open closes what was opened before it', () => {
  for (const [name, open] of Object.entries(openers)) {
    it(name, async () => {
      const before = await openFds();
      for (let i = 0; i < 5; i++) {
        const err = await open(image).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isQcow2Error(err), String(err)).toBe(true);
        expect((err as Error).message).toContain('missing.qcow2');
      }
      expect(await openFds()).toBe(before);
    });
  }
});

describe('a close whose flush fails still closes every file', () => {
  const engines = {
    reference: openReference,
    optimized: openOptimized,
  };
  for (const [name, open] of Object.entries(engines)) {
    it(name, async () => {
      const path = join(dir, `flushfail-${name}.qcow2`);
      await qemuImg(['create', '-q', '-f', 'qcow2', path, '1M']);
      const before = await openFds();
      // Every flush fails (a dead disk); nothing is written before the close, so the close's own
      // flush is the first to fail.
      const faults: FaultFile[] = [];
      const dev = await open(path, { wrapFile: (f) => (faults.push(new FaultFile(f, { on: 'flush', nth: 1, code: 'EIO', sticky: true })), faults[faults.length - 1]!) });
      const err = await dev.close().then(() => undefined, (e: unknown) => e);
      expect(isQcow2Error(err) && err.code, String(err)).toBe('io');
      expect(faults.reduce((n, f) => n + f.failures, 0)).toBeGreaterThan(0);
      expect(await openFds()).toBe(before);
    });
  }
});
