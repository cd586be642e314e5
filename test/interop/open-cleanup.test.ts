/**
 * Regression: an image with an external data file whose backing file cannot be opened. Both
 * engines used to leave the data file's handle open when the backing file failed (Node then
 * warned "Closing file descriptor N on garbage collection"). The open must fail with a typed error
 * and leave no file descriptor behind.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQcow2 } from '../../src/device/open.js';
import { isQcow2Error } from '../../src/errors.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';
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
