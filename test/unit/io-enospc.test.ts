/**
 * `qcow2 io` on a qcow2 image whose disk fills up: the data write fails with ENOSPC (injected by a
 * FaultFile under the engine) and the command reports it as qemu-io 7.2 does on a full file system
 * (`write failed: No space left on device`, seen on a 1 MiB tmpfs), not as EIO, on both engines.
 * EIO still reports Input/output error.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScript } from '../../src/cli/io/parse.js';
import { runOps } from '../../src/cli/io/run.js';
import type { BlockDevice, OpenOptions } from '../../src/engine/types.js';
import { FaultFile, type FaultRule } from '../../src/io/fault-file.js';
import { openOptimized } from '../../src/optimized/open.js';
import { openReference } from '../../src/reference/open.js';
import { tinyImage } from '../support/tiny-image.js';

const ENGINES: Record<string, (path: string, opts: OpenOptions) => Promise<BlockDevice>> = {
  reference: (path, opts) => openReference(path, opts),
  optimized: (path, opts) => openOptimized(path, { ...opts, compressionThreads: 0 }),
};

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-enospc-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function io(engine: string, rule: FaultRule, commands: string[]) {
  const path = join(dir, `${engine}-${rule.on}-${rule.code}.qcow2`);
  await writeFile(path, tinyImage());
  const device = await ENGINES[engine]!(path, { wrapFile: (f) => new FaultFile(f, rule) });
  let stdout = '';
  let stderr = '';
  try {
    const r = await runOps(device, parseScript(commands), { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) }, { now: () => 0n });
    return { ...r, stdout, stderr };
  } finally {
    await device.close().catch(() => undefined);
  }
}

describe('qcow2 io on a full disk', () => {
  for (const engine of Object.keys(ENGINES)) {
    it(`${engine}: a data write failing with ENOSPC prints No space left on device`, async () => {
      const r = await io(engine, { on: 'data', nth: 1, code: 'ENOSPC', sticky: true }, ['write -q 0 64k', 'write -q -P 7 128k 4k']);
      expect(r.failures).toBe(2);
      expect(r.stdout).toBe('write failed: No space left on device\nwrite failed: No space left on device\n');
      expect(r.stderr).toMatch(/ENOSPC \(injected\)/);
    });

    it(`${engine}: EIO prints Input/output error`, async () => {
      const r = await io(engine, { on: 'data', nth: 1, code: 'EIO' }, ['write -q 0 64k']);
      expect(r.failures).toBe(1);
      expect(r.stdout).toBe('write failed: Input/output error\n');
    });
  }
});
