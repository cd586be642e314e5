/**
 * What an export can be besides the active image, and the client mode, each judged by QEMU:
 * - `-l SNAPSHOT`: an internal snapshot, read-only; its bytes equal `qemu-img convert -l` of the
 *   image and what qemu-nbd -l exports.
 * - `-B BITMAP`: a persistent bitmap as qemu:dirty-bitmap:NAME; nbdinfo --map of it equals
 *   qemu-nbd's, at two granularities; bitmaps that must not be used are refused at start.
 * - `--detect-zeroes=on|unmap`: zero data written over NBD; the image afterwards has the same
 *   map (qemu-img map --output=json, host offsets aside) and contents as qemu-nbd's.
 * - `-L`: our listing of a server equals `qemu-nbd -L`'s, against either server.
 */
import { execa } from 'execa';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QCOW2_BIN, qcow2 } from '../support/cli.js';
import { startServer, stopAllServers, type NbdServer, type ServeOptions, type ServerKind } from '../support/nbd.js';
import { requireTool, toolEnv } from '../support/tools.js';
import { expectCheckClean, MiB, tempDir } from './fixtures.js';

const BITMAP_SCRIPT = fileURLToPath(new URL('./nbdsh-bitmap.py', import.meta.url));

let dir = '';
let cleanup = async () => {};
let serial = 0;

beforeAll(async () => {
  for (const t of ['qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo', 'nbdsh'] as const) await requireTool(t);
  ({ dir, cleanup } = await tempDir('nbd-exports-'));
});

afterEach(async () => {
  await stopAllServers();
});

afterAll(async () => {
  await cleanup();
});

const run = (cmd: string, args: string[]) => execa(cmd, args, { env: toolEnv() });
const path = (name: string) => join(dir, `${name}-${++serial}`);

async function serve(kind: ServerKind, image: string, opts: ServeOptions = {}): Promise<NbdServer> {
  return startServer(kind, image, { format: 'qcow2', ...opts });
}

function socketOf(srv: NbdServer): string {
  if (!('path' in srv.endpoint)) throw new Error('expected a unix socket');
  return srv.endpoint.path;
}

describe('-l SNAPSHOT: an internal snapshot, read-only', () => {
  let image = '';
  beforeAll(async () => {
    // s1 at 64 MiB, then more data and a resize to 80 MiB, s2, then more data in the active state.
    image = path('snap.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x11 0 1M', '-c', 'write -q -P 0x12 40M 64k', image]);
    await run('qemu-img', ['snapshot', '-c', 's1', image]);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x22 512k 1M', '-c', 'write -q -z 40M 64k', image]);
    await run('qemu-img', ['resize', '-q', image, '80M']);
    await run('qemu-img', ['snapshot', '-c', 's2', image]);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x33 70M 1M', image]);
  });

  for (const sn of ['s1', '2', 'snapshot.name=s1', 'snapshot.id=1']) {
    it(`-l ${sn}: the export's bytes equal qemu-img convert -l and qemu-nbd -l; it is read-only`, async () => {
      const ours = path('ours.raw');
      const expected = path('expected.raw');
      const theirs = path('theirs.raw');
      await run('qemu-img', ['convert', '-l', sn, '-O', 'raw', image, expected]);
      const o = await serve('ours', image, { extraArgs: ['-l', sn] });
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', o.uri, ours]);
      const can = await execa('nbdinfo', ['--can', 'write', o.uri], { env: toolEnv(), reject: false });
      expect(can.exitCode, 'nbdinfo --can write: 2 means no').toBe(2);
      await o.stop();
      const q = await serve('qemu', image, { extraArgs: ['-l', sn] });
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', q.uri, theirs]);
      await q.stop();
      expect(Buffer.compare(await readFile(ours), await readFile(expected))).toBe(0);
      expect(Buffer.compare(await readFile(ours), await readFile(theirs))).toBe(0);
    });
  }

  it('-l NAME that does not exist: the server does not start, with a one-line error', async () => {
    const r = await qcow2(['nbd', '-k', path('sock'), '-f', 'qcow2', '-l', 'nope', image]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/^qcow2 nbd: usage: snapshot 'nope' does not exist$/);
  });
});

describe('-B BITMAP: qemu:dirty-bitmap:NAME', () => {
  let image = '';
  beforeAll(async () => {
    image = path('bitmaps.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '100M']);
    await run('qemu-img', ['bitmap', '--add', image, 'coarse']);
    await run('qemu-img', ['bitmap', '--add', '-g', '512', image, 'fine']);
    // Writes while both bitmaps are enabled ('auto'): each marks its granules dirty.
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -q 1M 64k', '-c', 'write -q 10M 1k', '-c', 'write -q 40000 3000', '-c', 'write -q 99M 1M', image]);
    await run('qemu-img', ['bitmap', '--disable', image, 'coarse']);
  });

  for (const name of ['coarse', 'fine']) {
    it(`nbdinfo --map=qemu:dirty-bitmap:${name}: the same extents as qemu-nbd's, and listed by nbdinfo --list`, async () => {
      const maps: Record<string, string> = {};
      for (const kind of ['qemu', 'ours'] as const) {
        const s = await serve(kind, image, { readOnly: true, extraArgs: ['-B', name] });
        maps[kind] = (await run('nbdinfo', [`--map=qemu:dirty-bitmap:${name}`, s.uri])).stdout;
        if (kind === 'ours') expect((await run('nbdinfo', ['--list', '--json', s.uri])).stdout).toContain(`qemu:dirty-bitmap:${name}`);
        await s.stop();
      }
      expect(maps.ours).toContain('dirty');
      expect(maps.ours).toBe(maps.qemu);
    });
  }

  it('block status of qemu:dirty-bitmap:fine at odd offsets and lengths (nbdsh): the same extents as qemu-nbd', async () => {
    const seen: Record<string, unknown> = {};
    for (const kind of ['qemu', 'ours'] as const) {
      const s = await serve(kind, image, { readOnly: true, extraArgs: ['-B', 'fine'] });
      const result = path(`bitmap-${kind}.json`);
      await execa('nbdsh', ['-c', `exec(open(${JSON.stringify(BITMAP_SCRIPT)}).read())`], {
        env: { ...toolEnv(), NBD_URI: s.uri, CONTEXT: 'qemu:dirty-bitmap:fine', RESULT: result },
      });
      seen[kind] = JSON.parse(await readFile(result, 'utf8'));
      await s.stop();
    }
    expect(JSON.stringify(seen.ours)).toContain(',1');
    expect(seen.ours).toEqual(seen.qemu);
  });

  it("a writable export with -B: a client's writes show in the bitmap at once, and stay in it after the server stops, as with qemu-nbd", async () => {
    const maps: Record<string, string[]> = {};
    const images: Record<string, string> = {};
    for (const kind of ['qemu', 'ours'] as const) {
      const copy = path(`writable-${kind}.qcow2`);
      await copyFile(image, copy);
      images[kind] = copy;
      const s = await serve(kind, copy, { extraArgs: ['-B', 'fine'] });
      await run('qemu-io', ['-f', 'raw', '-c', 'write -q -P 9 50M 4k', '-c', 'write -q -z 70M 100k', '-c', 'flush', s.uri]);
      maps[kind] = [(await run('nbdinfo', ['--map=qemu:dirty-bitmap:fine', s.uri])).stdout];
      await s.stop();
      const after = await serve(kind, copy, { readOnly: true, extraArgs: ['-B', 'fine'] });
      maps[kind].push((await run('nbdinfo', ['--map=qemu:dirty-bitmap:fine', after.uri])).stdout);
      await after.stop();
    }
    expect(maps.ours![0]).toContain('52428800');
    expect(maps.ours).toEqual(maps.qemu);
    const flags = async (p: string) => JSON.parse((await run('qemu-img', ['info', '--output=json', p])).stdout)['format-specific'].data.bitmaps;
    expect(await flags(images.ours!)).toEqual(await flags(images.qemu!));
  });

  it('an unknown bitmap, and a bitmap left in_use by a killed writer, are refused at start', async () => {
    const missing = await qcow2(['nbd', '-r', '-k', path('sock'), '-f', 'qcow2', '-B', 'nope', image]);
    expect(missing.stderr.trim()).toMatch(/^qcow2 nbd: usage: bitmap 'nope' not found/);
    const crashed = path('inuse.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', crashed, '8M']);
    await run('qemu-img', ['bitmap', '--add', crashed, 'b0']);
    // qemu-io dies by SIGKILL with the image open for writing: the bitmap stays marked in_use.
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -q 0 64k', '-c', 'sigraise 9', crashed], { env: toolEnv(), reject: false });
    const info = JSON.parse((await run('qemu-img', ['info', '--force-share', '--output=json', crashed])).stdout) as {
      'format-specific': { data: { bitmaps: Array<{ flags: string[] }> } };
    };
    expect(info['format-specific'].data.bitmaps[0]!.flags).toContain('in-use');
    const r = await qcow2(['nbd', '-r', '-k', path('sock'), '-f', 'qcow2', '-B', 'b0', crashed]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/^qcow2 nbd: unsupported: bitmap 'b0': bitmap 'b0' is inconsistent \(in_use/);
  });
});

describe('--detect-zeroes: zero data becomes zero writes, as qemu-nbd makes them', () => {
  for (const mode of ['on', 'unmap'] as const) {
    it(`--detect-zeroes=${mode} --discard=unmap: the same map and contents as qemu-nbd's image`, async () => {
      const maps: Record<string, string> = {};
      const images: Record<string, string> = {};
      for (const kind of ['qemu', 'ours'] as const) {
        const image = path(`dz-${kind}.qcow2`);
        await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M']);
        await run('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x55 0 4M', image]);
        // qemu-nbd wants --discard before --detect-zeroes=unmap.
        const s = await serve(kind, image, { extraArgs: ['--discard=unmap', `--detect-zeroes=${mode}`] });
        await run('qemu-io', ['-f', 'raw', '-c', 'write -q -P 0 64k 1M', '-c', 'write -q -P 0 3M 4k', '-c', 'write -q -P 0 8M 1M', '-c', 'write -q -P 7 12M 4k', s.uri]);
        await s.stop();
        await expectCheckClean(image);
        maps[kind] = (await run('qemu-img', ['map', '--output=json', image])).stdout.replace(/"offset": \d+/g, '"offset": X');
        images[kind] = image;
      }
      expect(maps.ours).toContain('"zero": true, "data": false');
      expect(maps.ours).toBe(maps.qemu);
      await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', images.qemu!, images.ours!]);
    });
  }

  it('--detect-zeroes=unmap without --discard=unmap, and an unknown mode, are usage errors', async () => {
    const image = path('dz.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, `${MiB}`]);
    const a = await qcow2(['nbd', '-k', path('sock'), '-f', 'qcow2', '--detect-zeroes=unmap', image]);
    expect(a.stderr.trim()).toBe('qcow2 nbd: usage: nbd: --detect-zeroes=unmap needs --discard=unmap');
    const b = await qcow2(['nbd', '-k', path('sock'), '-f', 'qcow2', '--detect-zeroes=sometimes', image]);
    expect(b.stderr.trim()).toBe("qcow2 nbd: usage: nbd: invalid --detect-zeroes 'sometimes' (off, on or unmap)");
  });
});

describe('-L: listing a server, as qemu-nbd -L prints it', () => {
  it('ours and qemu-nbd -L print the same listing of each server (with and without description, bitmap, depth)', async () => {
    const image = path('list.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    await run('qemu-img', ['bitmap', '--add', image, 'b0']);
    const setups: ServeOptions[] = [
      {},
      { exportName: 'exp1', description: 'hello there', readOnly: true, allocationDepth: true, extraArgs: ['-B', 'b0'] },
      { exportName: 'two', shared: 1, discard: 'unmap' },
    ];
    for (const opts of setups) {
      for (const kind of ['qemu', 'ours'] as const) {
        const s = await serve(kind, image, opts);
        const theirs = (await execa('qemu-nbd', ['-L', '-k', socketOf(s)], { env: toolEnv(), stripFinalNewline: false })).stdout;
        const ours = await execa(process.execPath, [QCOW2_BIN, 'nbd', '-L', '-k', socketOf(s)], { reject: false, stripFinalNewline: false });
        expect(ours.exitCode, ours.stderr).toBe(0);
        expect(ours.stdout, `${kind} ${JSON.stringify(opts)}`).toBe(theirs);
        expect(ours.stdout).toContain(`export: '${opts.exportName ?? ''}'`);
        await s.stop();
      }
    }
  });

  it('-L with nothing listening: a one-line io error, exit 1', async () => {
    const r = await qcow2(['nbd', '-L', '-k', path('nothing.sock')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/^qcow2 nbd: io: nbd -L: cannot connect to .*: ENOENT$/);
  });
});
