/**
 * Encrypted images through every command, against QEMU 7.2's tools. Each case makes LUKS images
 * with qemu-img (an encrypted base, an encrypted top over it, a plain top over it), copies them into
 * two folders, runs qemu-img in one and ours in the other with the same arguments (`--object
 * secret,...`, `--image-opts ...,encrypt.key-secret=ID,backing.encrypt.key-secret=ID`), and
 * compares exit status, stdout and stderr (test/support/qemu-messages.ts); then the results are
 * judged by qemu-img (compare and check with the secret, info, byte comparison). Expected outputs
 * come from qemu-img only. Missing tools fail the tests (nothing here skips).
 */
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { qemuImgCalibrating } from '../support/luks-image.js';
import { expectSameMessage } from '../support/qemu-messages.js';
import { startServer, stopAllServers } from '../support/nbd.js';
import { requireTool } from '../support/tools.js';

let dir = '';
const SECRET = ['--object', 'secret,id=sec0,data=abc'];
const WRONG = ['--object', 'secret,id=sec0,data=wrong'];
/** --image-opts of an image, its own secret and (with `backing`) its backing file's. */
const opts = (name: string, backing = false) => `driver=qcow2,file.filename=${name},encrypt.key-secret=sec0${backing ? ',backing.encrypt.key-secret=sec0' : ''}`;
const keyed = (name: string, backing = false) => ['--image-opts', opts(name, backing)];
/** The plain top: only its backing file needs a secret. */
const PLAIN = ['--image-opts', 'driver=qcow2,file.filename=plain.qcow2,backing.encrypt.key-secret=sec0'];

/** base.qcow2 (LUKS, data), top.qcow2 (LUKS over base), plain.qcow2 (no encryption, over base), in `dir`. */
async function makeImages(): Promise<void> {
  const create = async (args: string[]) => {
    const r = await qemuImgCalibrating(['create', '-q', ...SECRET, '-f', 'qcow2', ...args], { cwd: dir });
    if (r.exitCode !== 0) throw new Error(`qemu-img create failed: ${r.stderr}`);
  };
  await create(['-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', 'base.qcow2', '4M']);
  await qemuIo(keyed('base.qcow2'), ['write -P 0x41 0 64k', 'write -P 0x42 1M 100k', 'write -z 2M 64k', 'write -P 0x43 3M 4k']);
  await create(['-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2']);
  await qemuIo(keyed('top.qcow2', true), ['write -P 0x51 64k 64k', 'write -P 0x52 1M 4k', 'write -z 3M 4k']);
  await create(['-b', 'base.qcow2', '-F', 'qcow2', 'plain.qcow2']);
  await qemuIo(PLAIN, ['write -P 0x61 2M 64k']);
}

async function qemuIo(target: string[], cmds: string[]): Promise<void> {
  await execa('qemu-io', [...SECRET, ...target, ...cmds.flatMap((c) => ['-c', c])], { cwd: dir });
}

/** Fresh copies of the images in `dir/qemu` and `dir/ours`. */
async function sides(): Promise<{ qemu: string; ours: string }> {
  const out = { qemu: join(dir, `qemu-${++round}`), ours: join(dir, `ours-${round}`) };
  for (const side of [out.qemu, out.ours]) {
    await mkdir(side);
    for (const name of ['base.qcow2', 'top.qcow2', 'plain.qcow2']) await copyFile(join(dir, name), join(side, name));
  }
  return out;
}
let round = 0;

/** Runs `qemu-img COMMAND ARGS` in one folder and `qcow2 COMMAND ARGS` in the other: same status, stdout, stderr. */
async function same(command: string, args: string[], s: { qemu: string; ours: string }) {
  const q = await qemuImgCalibrating([command, ...args], { cwd: s.qemu });
  const r = await qcow2([command, ...args], { cwd: s.ours });
  expect(r.stdout, r.stderr).toBe(q.stdout);
  expectSameMessage(command, r.stderr, q.stderr, (t) => t);
  expect(r.exitCode, r.stderr).toBe(q.exitCode);
  return q;
}

/** qemu-img compare of the same image in both folders (with the secrets), and check of ours. */
async function judge(s: { qemu: string; ours: string }, name: string, backing = false): Promise<void> {
  const cmp = await execa('qemu-img', ['compare', ...SECRET, '--image-opts', opts(join(s.qemu, name), backing), opts(join(s.ours, name), backing)], { reject: false });
  expect(cmp.stdout, cmp.stderr).toBe('Images are identical.');
  const check = await execa('qemu-img', ['check', ...SECRET, '--image-opts', opts(join(s.ours, name), backing)], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
}

/** qemu-img info --output=json, without what depends on the folder or the file system. */
async function infoOf(path: string): Promise<unknown> {
  const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout) as Record<string, unknown>;
  delete info['filename'];
  delete info['full-backing-filename'];
  delete info['actual-size'];
  delete info['dirty-flag'];
  return info;
}

beforeAll(async () => {
  for (const tool of ['qemu-img', 'qemu-io', 'qemu-nbd'] as const) await requireTool(tool);
  dir = await mkdtemp(join(tmpdir(), 'qcow2-luks-commands-'));
  await makeImages();
}, 120_000);
afterEach(async () => {
  await stopAllServers();
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('an encrypted backing file (backing.encrypt.key-secret)', () => {
  it('convert, map, compare, check read through it as qemu-img does', async () => {
    const s = await sides();
    await same('convert', [...SECRET, ...keyed('top.qcow2', true), '-O', 'raw', 'top.raw'], s);
    expect((await readFile(join(s.ours, 'top.raw'))).equals(await readFile(join(s.qemu, 'top.raw')))).toBe(true);
    const plainOpts = PLAIN;
    await same('convert', [...SECRET, ...plainOpts, '-O', 'raw', 'plain.raw'], s);
    expect((await readFile(join(s.ours, 'plain.raw'))).equals(await readFile(join(s.qemu, 'plain.raw')))).toBe(true);
    await same('map', [...SECRET, '--output=json', ...keyed('top.qcow2', true)], s);
    await same('map', [...SECRET, '--output=json', ...plainOpts], s);
    await same('compare', [...SECRET, '--image-opts', opts('top.qcow2', true), opts('top.qcow2', true)], s);
    await same('check', [...SECRET, ...keyed('top.qcow2', true)], s);
  });

  it('a missing or wrong passphrase, of the top or of the backing file: qemu-img message and status', async () => {
    const s = await sides();
    await same('convert', ['-O', 'raw', 'plain.qcow2', 'x.raw'], s);
    await same('convert', [...SECRET, ...keyed('top.qcow2'), '-O', 'raw', 'x.raw'], s);
    await same('convert', [...WRONG, ...keyed('top.qcow2', true), '-O', 'raw', 'x.raw'], s);
    const wrongBelow = ['--object', 'secret,id=sec0,data=abc', '--object', 'secret,id=sec1,data=bad'];
    await same('convert', [...wrongBelow, '--image-opts', `${opts('top.qcow2')},backing.encrypt.key-secret=sec1`, '-O', 'raw', 'x.raw'], s);
    await same('map', [...WRONG, '--output=json', ...keyed('top.qcow2', true)], s);
    await same('check', [...WRONG, ...keyed('top.qcow2', true)], s);
    // qemu-img info opens no backing file and so takes no backing options.
    await same('info', [...SECRET, ...keyed('top.qcow2', true)], s);
  });
});

describe('dd', () => {
  it('copies an encrypted input (raw and qcow2 output) as qemu-img dd', async () => {
    const s = await sides();
    await same('dd', [...SECRET, '--image-opts', `if=${opts('top.qcow2', true)}`, 'of=out.raw', 'bs=64k', 'count=40', 'skip=1'], s);
    expect((await readFile(join(s.ours, 'out.raw'))).equals(await readFile(join(s.qemu, 'out.raw')))).toBe(true);
    await same('dd', [...SECRET, '--image-opts', '-O', 'qcow2', `if=${opts('base.qcow2')}`, 'of=out.qcow2'], s);
    const cmp = await execa('qemu-img', ['compare', join(s.qemu, 'out.qcow2'), join(s.ours, 'out.qcow2')], { reject: false });
    expect(cmp.stdout).toBe('Images are identical.');
    await same('dd', [...WRONG, '--image-opts', `if=${opts('base.qcow2')}`, 'of=bad.raw'], s);
    await same('dd', ['if=base.qcow2', 'of=bad.raw'], s);
  });
});

describe('rebase', () => {
  it('safe mode onto no backing file copies the encrypted base into the encrypted top', async () => {
    const s = await sides();
    await same('rebase', [...SECRET, ...keyed('top.qcow2', true), '-b', ''], s);
    await judge(s, 'top.qcow2');
    expect(await infoOf(join(s.ours, 'top.qcow2'))).toEqual(await infoOf(join(s.qemu, 'top.qcow2')));
  });
  it('unsafe mode, and a plain top over an encrypted base', async () => {
    const s = await sides();
    await same('rebase', [...SECRET, ...keyed('top.qcow2'), '-u', '-b', 'other.qcow2', '-F', 'qcow2'], s);
    expect(await infoOf(join(s.ours, 'top.qcow2'))).toEqual(await infoOf(join(s.qemu, 'top.qcow2')));
    await same('rebase', [...SECRET, ...PLAIN, '-b', ''], s);
    const cmp = await execa('qemu-img', ['compare', join(s.qemu, 'plain.qcow2'), join(s.ours, 'plain.qcow2')], { reject: false });
    expect(cmp.stdout).toBe('Images are identical.');
  });
  it('a missing or wrong passphrase', async () => {
    const s = await sides();
    await same('rebase', ['-u', '-b', '', 'top.qcow2'], s);
    await same('rebase', [...WRONG, ...keyed('top.qcow2', true), '-b', ''], s);
    await same('rebase', [...SECRET, ...keyed('top.qcow2'), '-b', ''], s);
  });
});

describe('commit', () => {
  it('commits an encrypted top into its encrypted base', async () => {
    const s = await sides();
    await same('commit', [...SECRET, ...keyed('top.qcow2', true)], s);
    await judge(s, 'base.qcow2');
    await judge(s, 'top.qcow2', true);
  });
  it('a plain top into an encrypted base, -d', async () => {
    const s = await sides();
    await same('commit', [...SECRET, '-d', ...PLAIN], s);
    await judge(s, 'base.qcow2');
  });
  it('a missing or wrong passphrase', async () => {
    const s = await sides();
    await same('commit', [...SECRET, ...keyed('top.qcow2')], s);
    await same('commit', [...WRONG, ...keyed('top.qcow2', true)], s);
    await same('commit', ['top.qcow2'], s);
  });
});

describe('bitmap', () => {
  it('adds, disables, clears and merges bitmaps of an encrypted image', async () => {
    const s = await sides();
    await same('bitmap', [...SECRET, ...keyed('base.qcow2'), '--add', 'b0'], s);
    await same('bitmap', [...SECRET, ...keyed('base.qcow2'), '--add', '-g', '128k', '--disable', 'b1'], s);
    await same('bitmap', [...SECRET, ...keyed('base.qcow2'), '--merge', 'b1', '--clear', 'b0'], s);
    await same('bitmap', [...SECRET, ...keyed('base.qcow2'), '--remove', 'nope'], s);
    expect(await infoOf(join(s.ours, 'base.qcow2'))).toEqual(await infoOf(join(s.qemu, 'base.qcow2')));
    await judge(s, 'base.qcow2');
    await same('bitmap', [...WRONG, ...keyed('base.qcow2'), '--add', 'b2'], s);
    await same('bitmap', ['--add', 'base.qcow2', 'b2'], s);
  });
});

describe('amend', () => {
  it.each([['lazy_refcounts=on'], ['compat=0.10'], ['refcount_bits=8'], ['size=8M'], ['compat=0.10,refcount_bits=8'], ['encrypt.format=luks']])(
    '-o %s on an encrypted image',
    async (o) => {
      const s = await sides();
      await same('amend', [...SECRET, ...keyed('base.qcow2'), '-o', o], s);
      expect(await infoOf(join(s.ours, 'base.qcow2'))).toEqual(await infoOf(join(s.qemu, 'base.qcow2')));
      await judge(s, 'base.qcow2');
    },
  );
  it('a missing or wrong passphrase', async () => {
    const s = await sides();
    await same('amend', [...WRONG, ...keyed('base.qcow2'), '-o', 'lazy_refcounts=on'], s);
    await same('amend', ['-o', 'lazy_refcounts=on', 'base.qcow2'], s);
  });
  it('key slot options qemu-img refuses before it changes a key slot (the changes: luks-amend.test.ts)', async () => {
    const s = await sides();
    await same('amend', [...SECRET, ...keyed('base.qcow2'), '-o', 'encrypt.keyslot=1'], s);
    await same('amend', [...SECRET, ...keyed('base.qcow2'), '-o', 'encrypt.state=on'], s);
    expect((await readFile(join(s.ours, 'base.qcow2'))).equals(await readFile(join(dir, 'base.qcow2')))).toBe(true);
  });
});

describe('measure', () => {
  const LUKS = 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10';
  it.each([
    [''],
    [',encrypt.cipher-alg=aes-128'],
    [',encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv'],
    [',encrypt.hash-alg=sha512,cluster_size=4k'],
    [',cluster_size=512'],
    [',cluster_size=2M,extended_l2=on'],
    [',preallocation=full,refcount_bits=1'],
  ])('-O qcow2 -o encrypt.format=luks%s: the numbers of qemu-img measure', async (extra) => {
    const s = await sides();
    // qemu-img measure calibrates PBKDF2 (a second or more each time): few sizes.
    for (const size of ['1M', '1T']) await same('measure', [...SECRET, '--size', size, '-O', 'qcow2', '-o', `${LUKS}${extra}`], s);
    await same('measure', [...SECRET, '--output=json', '-O', 'qcow2', '-o', `${LUKS}${extra}`, ...PLAIN], s);
  });
  it('an encrypted source, its backing file encrypted too', async () => {
    const s = await sides();
    await same('measure', [...SECRET, ...keyed('top.qcow2', true), '-O', 'qcow2'], s);
    await same('measure', [...SECRET, '--output=json', ...keyed('base.qcow2'), '-O', 'qcow2', '-o', LUKS], s);
    await same('measure', [...SECRET, ...keyed('base.qcow2')], s);
  });
  it('what qemu-img refuses, with its message', async () => {
    const s = await sides();
    const refused = [
      ['--size', '1G', '-O', 'qcow2', '-o', 'encrypt.format=luks'],
      [...SECRET, '--size', '1G', '-O', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=sec1'],
      [...SECRET, '--size', '1G', '-O', 'qcow2', '-o', `${LUKS},encrypt.cipher-alg=foo`],
      [...SECRET, '--size', '1G', '-O', 'qcow2', '-o', `${LUKS},encrypt.ivgen-alg=foo,encrypt.cipher-mode=bar`],
      [...SECRET, '--size', '1G', '-O', 'qcow2', '-o', `${LUKS},encrypt.hash-alg=md4`],
      ['-O', 'qcow2', 'base.qcow2'],
      [...WRONG, ...keyed('base.qcow2'), '-O', 'qcow2'],
    ];
    for (const args of refused) await same('measure', args, s);
  });
});

describe('resize', () => {
  it.each([
    ['metadata', '4M', '8M'],
    ['metadata', '3000k', '6000k'],
    ['falloc', '4M', '8M'],
    ['falloc', '3000k', '6000k'],
    ['full', '3000k', '6000k'],
  ])('--preallocation=%s of an encrypted image from %s to %s: qemu-img’s file, byte for byte', async (mode, from, to) => {
    const s = await sides();
    for (const side of [s.qemu, s.ours]) {
      const r = await qemuImgCalibrating(['create', '-q', ...SECRET, '-f', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', 'r.qcow2', from], { cwd: side });
      expect(r.exitCode, r.stderr).toBe(0);
    }
    // The same key material on both sides: ours is a copy of qemu-img's.
    await execa('qemu-io', [...SECRET, ...keyed('r.qcow2'), '-c', 'write -P 0x71 0 3000k'], { cwd: s.qemu });
    await copyFile(join(s.qemu, 'r.qcow2'), join(s.ours, 'r.qcow2'));
    await same('resize', [...SECRET, ...keyed('r.qcow2'), `--preallocation=${mode}`, to], s);
    expect((await readFile(join(s.ours, 'r.qcow2'))).equals(await readFile(join(s.qemu, 'r.qcow2')))).toBe(true);
    await judge(s, 'r.qcow2');
    await same('resize', [...WRONG, ...keyed('r.qcow2'), `--preallocation=${mode}`, '+1M'], s);
  });
});

describe('nbd: an encrypted image served as qemu-nbd serves it', () => {
  it.each([[[] as string[]], [['-s']]])('--object --image-opts %j: read over nbd+unix as qemu-img converts the image', async (extra) => {
    const s = await sides();
    const expected = join(s.qemu, 'expected.raw');
    await execa('qemu-img', ['convert', ...SECRET, ...keyed('top.qcow2', true), '-O', 'raw', expected], { cwd: s.qemu });
    for (const kind of ['qemu', 'ours'] as const) {
      const srv = await startServer(kind, opts(join(s.ours, 'top.qcow2'), true), { readOnly: extra.length === 0, extraArgs: [...SECRET, '--image-opts', ...extra] });
      const out = join(s.ours, `${kind}.raw`);
      await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri, out]);
      await srv.stop();
      expect((await readFile(out)).equals(await readFile(expected)), kind).toBe(true);
    }
  });
});

describe('bench', () => {
  it('benchmarks an encrypted image given with --object and --image-opts', async () => {
    const s = await sides();
    const r = await qcow2(['bench', ...SECRET, ...keyed('top.qcow2', true), '-c', '200', '-w', '--pattern=7'], { cwd: s.ours });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    // What the writes left, read by qemu-io with the secret.
    const q = await execa('qemu-io', [...SECRET, ...keyed('top.qcow2', true), '-c', 'read -P 7 0 4k'], { cwd: s.ours, reject: false });
    expect(q.stdout).not.toContain('Pattern verification failed');
    const check = await execa('qemu-img', ['check', ...SECRET, ...keyed('top.qcow2', true)], { cwd: s.ours, reject: false });
    expect(check.exitCode, check.stdout).toBe(0);
  });
});
