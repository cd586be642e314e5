/**
 * Qcow2Device.changeBackingFile (src/qcow2/backing-file.ts) on every engine lane of the dirty-bit
 * suite, judged by qemu-img: after the change `qemu-img info` names the new backing file and
 * format (or none), `qemu-img check` finds the image clean, the dirty bit is clear, and what the
 * image allocates itself reads as before; a refused change (format without a name, a name over
 * 1023 bytes, a header that does not fit the first cluster, data_file_raw) is a typed `usage`
 * error with QEMU's errno and leaves the file's bytes as they were; a read-only image is refused.
 */
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errnoOf } from '../../src/errors.js';
import { lanesFor } from '../../src/verification/engines.js';
import { requireTool } from '../support/tools.js';

let dir = '';
let n = 0;
const img = (...args: string[]) => execa('qemu-img', args, { cwd: dir });

beforeAll(async () => {
  await requireTool('qemu-img');
  await requireTool('qemu-io');
  dir = await mkdtemp(join(tmpdir(), 'qcow2-backing-change-'));
  await img('create', '-q', '-f', 'qcow2', 'base.qcow2', '1M');
  await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', 'new.qcow2', '1M');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A fresh overlay of base.qcow2 holding 4 KiB of data, in `options`. */
async function overlay(options: string): Promise<string> {
  const name = `img${n++}.qcow2`;
  await img('create', '-q', '-f', 'qcow2', '-o', options, '-b', 'base.qcow2', '-F', 'qcow2', name, '1M');
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 4k 4k', name], { cwd: dir });
  return name;
}

async function info(name: string): Promise<Record<string, unknown>> {
  return JSON.parse((await img('info', '-U', '--output=json', name)).stdout) as Record<string, unknown>;
}

const FORMATS = ['compat=1.1', 'compat=0.10', 'compat=1.1,cluster_size=512', 'compat=1.1,extended_l2=on'];

describe.concurrent('changeBackingFile', () => {
  for (const { name: engine, open } of lanesFor('dirty-bit')) {
    for (const options of FORMATS) {
      it(`${engine}, ${options}: another name and format, then none`, async ({ expect }) => {
        const name = await overlay(options);
        const path = join(dir, name);
        const dev = await open(path, { compressionThreads: 0 });
        await dev.changeBackingFile('new.qcow2', 'qcow2');
        expect(dev.backingName).toBe('new.qcow2');
        await dev.close();
        let got = await info(name);
        expect([got['backing-filename'], got['backing-filename-format']]).toEqual(['new.qcow2', 'qcow2']);
        // v3: incompatible_features' bit 0 (v2 headers end before it).
        if (!options.includes('0.10')) expect((await readFile(path))[79]! & 1).toBe(0);
        expect((await img('check', name)).exitCode).toBe(0);
        const read = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x5a 4k 4k', name], { cwd: dir });
        expect(read.stdout).not.toMatch(/Pattern verification failed/);

        const again = await open(path, { compressionThreads: 0 });
        await again.changeBackingFile(undefined, undefined);
        await again.close();
        got = await info(name);
        expect(got['backing-filename']).toBeUndefined();
        expect(got['backing-filename-format']).toBeUndefined();
        expect((await img('check', name)).exitCode).toBe(0);
      });
    }

    it(`${engine}: refusals leave the file as it was`, async ({ expect }) => {
      const name = await overlay('compat=1.1,cluster_size=512');
      const path = join(dir, name);
      const before = await readFile(path);
      const dev = await open(path, { compressionThreads: 0 });
      const refusals: [string | undefined, string | undefined, string][] = [
        [undefined, 'qcow2', 'EINVAL'],
        ['', 'qcow2', 'EINVAL'],
        ['x'.repeat(1024), 'qcow2', 'EINVAL'],
        ['x'.repeat(600), 'qcow2', 'ENOSPC'],
      ];
      for (const [backing, format, errno] of refusals) {
        const err = await dev.changeBackingFile(backing, format).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toMatchObject({ code: 'usage' });
        expect(errnoOf(err)).toBe(errno);
      }
      await dev.close();
      expect((await readFile(path)).equals(before)).toBe(true);

      const ro = await open(path, { readOnly: true, compressionThreads: 0 });
      await expect(ro.changeBackingFile('new.qcow2', 'qcow2')).rejects.toMatchObject({ code: 'usage' });
      await ro.close();
      expect((await readFile(path)).equals(before)).toBe(true);
    });
  }

  it('an image whose external data file is raw cannot name a backing file', async () => {
    const name = `dfr${n++}.qcow2`;
    await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=dfr.data,data_file_raw=on', name, '1M');
    const path = join(dir, name);
    const before = await readFile(path);
    for (const { open } of lanesFor('dirty-bit')) {
      const dev = await open(path, { compressionThreads: 0 });
      const err = await dev.changeBackingFile('new.qcow2', 'qcow2').then(
        () => undefined,
        (e: unknown) => e,
      );
      await dev.close();
      expect(errnoOf(err)).toBe('EINVAL');
    }
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});
