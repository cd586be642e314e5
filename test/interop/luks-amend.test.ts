/**
 * `amend` of LUKS key slots (encrypt.state, encrypt.new-secret, encrypt.old-secret,
 * encrypt.keyslot, encrypt.iter-time) against qemu-img 7.2. Images are made by qemu-img create
 * (and a second key slot by qemu-img amend); each case runs qemu-img amend on one copy and ours on
 * another with the same arguments: same exit status, stdout and stderr. Then QEMU judges our
 * result: qemu-img opens it with exactly the secrets it opens its own result with (same status and
 * message), qemu-img info shows the same active slots, and qemu-img compare finds the guest data
 * identical to the original's. Expected outputs come from qemu-img only.
 */
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amendLuksKeySlots, type LuksAmendOptions } from '../../src/crypto/luks-keys.js';
import { decodeLuksHeader, LUKS_HEADER_SIZE } from '../../src/format/luks.js';
import { qcow2 } from '../support/cli.js';
import { qemuImgCalibrating } from '../support/luks-image.js';
import { expectSameMessage } from '../support/qemu-messages.js';
import { requireTool } from '../support/tools.js';

let dir = '';
/** pw0 opens the images as made; pw1 and pw2 are new passphrases; pw0 is also named s0b. */
const OBJECTS = ['s0:pw0', 's1:pw1', 's2:pw2', 's0b:pw0'].flatMap((o) => ['--object', `secret,id=${o.split(':')[0]},data=${o.split(':')[1]}`]);
const opts = (name: string, secret = 's0') => `driver=qcow2,file.filename=${name},encrypt.key-secret=${secret}`;
const LUKS = 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10';

/** one.qcow2: slot 0 (pw0); two.qcow2: slot 0 (pw0) and slot 1 (pw1, added by qemu-img); both with data. */
async function makeImages(): Promise<void> {
  const c = await qemuImgCalibrating(['create', '-q', ...OBJECTS, '-f', 'qcow2', '-o', LUKS, 'one.qcow2', '4M'], { cwd: dir });
  if (c.exitCode !== 0) throw new Error(`qemu-img create failed: ${c.stderr}`);
  await execa('qemu-io', [...OBJECTS, '--image-opts', opts('one.qcow2'), '-c', 'write -P 0x41 0 64k', '-c', 'write -P 0x42 1M 100k'], { cwd: dir });
  await copyFile(join(dir, 'one.qcow2'), join(dir, 'two.qcow2'));
  const a = await qemuImgCalibrating(['amend', ...OBJECTS, '--image-opts', opts('two.qcow2'), '-o', 'encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10'], { cwd: dir });
  if (a.exitCode !== 0) throw new Error(`qemu-img amend failed: ${a.stderr}`);
}

let round = 0;
/** Copies of `name` in a fresh qemu and ours folder. */
async function sides(name: string): Promise<{ qemu: string; ours: string }> {
  const out = { qemu: join(dir, `qemu-${++round}`), ours: join(dir, `ours-${round}`) };
  for (const side of [out.qemu, out.ours]) {
    await mkdir(side);
    await copyFile(join(dir, name), join(side, name));
  }
  return out;
}

/** `amend` with `-o o` by qemu-img in one folder and by us in the other: same status, stdout, stderr. */
async function same(name: string, o: string, s: { qemu: string; ours: string }, extra: string[] = []) {
  const args = ['amend', ...OBJECTS, ...extra, '--image-opts', opts(name), '-o', o];
  const q = await qemuImgCalibrating(args, { cwd: s.qemu });
  const r = await qcow2(args, { cwd: s.ours });
  expect(r.stdout, r.stderr).toBe(q.stdout);
  expectSameMessage('amend', r.stderr, q.stderr, (t) => t);
  expect(r.exitCode, r.stderr).toBe(q.exitCode);
  return q;
}

/** The active flags of the key slots, as qemu-img info shows them. */
async function slots(path: string): Promise<boolean[]> {
  const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout) as {
    'format-specific': { data: { encrypt: { slots: { active: boolean }[] } } };
  };
  return info['format-specific'].data.encrypt.slots.map((x) => x.active);
}

/** qemu-img compare of the original (opened with pw0) with `path` opened with `secret`: status and output, paths taken out. */
async function openWith(original: string, path: string, secret: string) {
  const r = await execa('qemu-img', ['compare', ...OBJECTS, '--image-opts', opts(original), opts(path, secret)], { reject: false });
  return { exitCode: r.exitCode, out: (r.stdout + r.stderr).replaceAll(path, 'IMAGE') };
}

/** QEMU's judgement: the same secrets open both results (and then the data is the original's), the same slots are active. */
async function judge(name: string, s: { qemu: string; ours: string }): Promise<void> {
  const original = join(dir, name);
  expect(await slots(join(s.ours, name))).toEqual(await slots(join(s.qemu, name)));
  for (const secret of ['s0', 's1', 's2']) {
    const theirs = await openWith(original, join(s.qemu, name), secret);
    const ours = await openWith(original, join(s.ours, name), secret);
    expect(ours, secret).toEqual(theirs);
    if (theirs.exitCode === 0) expect(theirs.out).toBe('Images are identical.');
  }
  const check = await execa('qemu-img', ['check', ...OBJECTS, '--image-opts', opts(join(s.ours, name), 's0')], { reject: false });
  const checkQ = await execa('qemu-img', ['check', ...OBJECTS, '--image-opts', opts(join(s.qemu, name), 's0')], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(checkQ.exitCode);
}

beforeAll(async () => {
  for (const tool of ['qemu-img', 'qemu-io'] as const) await requireTool(tool);
  dir = await mkdtemp(join(tmpdir(), 'qcow2-luks-amend-'));
  await makeImages();
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('adding a key slot (encrypt.state=active)', () => {
  it.each([
    ['one.qcow2', 'encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10'],
    ['one.qcow2', 'encrypt.state=active,encrypt.new-secret=s2,encrypt.keyslot=5,encrypt.iter-time=10'],
    ['two.qcow2', 'encrypt.state=active,encrypt.new-secret=s2,encrypt.iter-time=10'],
  ])('%s -o %s', async (name, o) => {
    const s = await sides(name);
    await same(name, o, s);
    await judge(name, s);
  }, 60_000);

  it('--force overwrites an active slot', async () => {
    const s = await sides('two.qcow2');
    await same('two.qcow2', 'encrypt.state=active,encrypt.new-secret=s2,encrypt.keyslot=1,encrypt.iter-time=10', s, ['--force']);
    await judge('two.qcow2', s);
  }, 60_000);

  it.each([
    'encrypt.state=active',
    'encrypt.state=active,encrypt.new-secret=s1,encrypt.old-secret=s0',
    'encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=8',
    'encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=0',
    'encrypt.state=active,encrypt.new-secret=nosuch,encrypt.iter-time=10',
    'encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=x',
  ])('refused as qemu-img refuses it: -o %s', async (o) => {
    const s = await sides('one.qcow2');
    await same('one.qcow2', o, s);
    expect((await readFile(join(s.ours, 'one.qcow2'))).equals(await readFile(join(dir, 'one.qcow2')))).toBe(true);
  }, 60_000);
});

describe('erasing key slots (encrypt.state=inactive)', () => {
  it.each([
    ['two.qcow2', 'encrypt.state=inactive,encrypt.keyslot=1'],
    ['two.qcow2', 'encrypt.state=inactive,encrypt.keyslot=0'],
    ['two.qcow2', 'encrypt.state=inactive,encrypt.old-secret=s1'],
    ['two.qcow2', 'encrypt.state=inactive,encrypt.old-secret=s0b'],
    ['two.qcow2', 'encrypt.state=inactive,encrypt.keyslot=1,encrypt.old-secret=s1'],
  ])('%s -o %s', async (name, o) => {
    const s = await sides(name);
    await same(name, o, s);
    await judge(name, s);
  }, 60_000);

  it('erased key material is overwritten', async () => {
    const s = await sides('two.qcow2');
    await same('two.qcow2', 'encrypt.state=inactive,encrypt.keyslot=1', s);
    const before = await readFile(join(dir, 'two.qcow2'));
    const after = await readFile(join(s.ours, 'two.qcow2'));
    // The LUKS area: the material of slot 1 (keyBytes 64 × 4000 stripes at its key offset) changed.
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', join(dir, 'two.qcow2')])).stdout) as {
      'format-specific': { data: { encrypt: { slots: { 'key-offset': number }[] } } };
    };
    const hdr = before.indexOf(Buffer.from('LUKS\xba\xbe', 'latin1'));
    const at = hdr + info['format-specific'].data.encrypt.slots[1]!['key-offset'];
    expect(after.subarray(at, at + 256000).equals(before.subarray(at, at + 256000))).toBe(false);
  }, 60_000);

  it('--force erases the last active slot, as qemu-img does', async () => {
    const s = await sides('one.qcow2');
    await same('one.qcow2', 'encrypt.state=inactive,encrypt.keyslot=0', s, ['--force']);
    expect(await slots(join(s.ours, 'one.qcow2'))).toEqual(await slots(join(s.qemu, 'one.qcow2')));
    for (const secret of ['s0', 's1']) {
      expect(await openWith(join(dir, 'one.qcow2'), join(s.ours, 'one.qcow2'), secret)).toEqual(await openWith(join(dir, 'one.qcow2'), join(s.qemu, 'one.qcow2'), secret));
    }
  }, 60_000);

  it.each([
    ['one.qcow2', 'encrypt.state=inactive,encrypt.keyslot=0'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.old-secret=s0'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.keyslot=5'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.keyslot=9'],
    ['one.qcow2', 'encrypt.state=inactive'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.new-secret=s1'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.keyslot=1,encrypt.iter-time=10'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.old-secret=s1'],
    ['one.qcow2', 'encrypt.state=inactive,encrypt.old-secret=nosuch'],
    ['two.qcow2', 'encrypt.state=inactive,encrypt.keyslot=0,encrypt.old-secret=s1'],
  ])('refused as qemu-img refuses it: %s -o %s', async (name, o) => {
    const s = await sides(name);
    await same(name, o, s);
    expect((await readFile(join(s.ours, name))).equals(await readFile(join(dir, name)))).toBe(true);
  }, 60_000);
});

describe('a crash during a key slot change leaves the old secret working (judged by qemu-img)', () => {
  /**
   * Runs the key slot change on `path` with the LUKS area's writes going to the file, and "crashes"
   * (stops with an error) at the first flush after `flushes` flushes: what was written stays.
   */
  async function crashAt(path: string, o: LuksAmendOptions, flushes: number): Promise<void> {
    const bytes = await readFile(path);
    const base = bytes.indexOf(Buffer.from('LUKS\xba\xbe', 'latin1'));
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout) as {
      'format-specific': { data: { encrypt: { 'payload-offset': number } } };
    };
    const areaLength = info['format-specific'].data.encrypt['payload-offset'];
    const header = decodeLuksHeader(bytes.subarray(base, base + LUKS_HEADER_SIZE), base);
    const fh = await open(path, 'r+');
    let seen = 0;
    try {
      const run = amendLuksKeySlots(
        header,
        areaLength,
        o,
        { keySecret: () => Buffer.from('pw0'), secret: (id) => Buffer.from({ s1: 'pw1', s2: 'pw2' }[id] ?? '') },
        {
          read: async (offset, length) => Uint8Array.prototype.slice.call(bytes, base + offset, base + offset + length),
          write: async (offset, data) => {
            await fh.write(data, 0, data.byteLength, base + offset);
          },
          flush: async () => {
            await fh.sync();
            if (++seen > flushes) throw new Error('crash');
          },
        },
        false,
      );
      await expect(run).rejects.toThrow('crash');
    } finally {
      await fh.close();
    }
  }

  it('adding: the key material is written and flushed, the header not yet', async () => {
    const s = await sides('one.qcow2');
    const path = join(s.ours, 'one.qcow2');
    await crashAt(path, { state: 'active', newSecret: 's2', iterTime: 10 }, 0);
    expect(await slots(path)).toEqual(await slots(join(dir, 'one.qcow2')));
    expect(await openWith(join(dir, 'one.qcow2'), path, 's0')).toEqual({ exitCode: 0, out: 'Images are identical.' });
    expect((await openWith(join(dir, 'one.qcow2'), path, 's2')).exitCode).not.toBe(0);
  }, 60_000);

  it('erasing: the header is written and flushed, the material not yet wiped', async () => {
    const s = await sides('two.qcow2');
    const path = join(s.ours, 'two.qcow2');
    await crashAt(path, { state: 'inactive', keyslot: 1 }, 0);
    expect((await slots(path)).slice(0, 2)).toEqual([true, false]);
    expect(await openWith(join(dir, 'two.qcow2'), path, 's0')).toEqual({ exitCode: 0, out: 'Images are identical.' });
    expect((await openWith(join(dir, 'two.qcow2'), path, 's1')).exitCode).not.toBe(0);
  }, 60_000);
});
