/**
 * The ublk server in a 6.12 VM (test/support/vm.ts): `qcow2 ublk` (bin/qcow2, from the dist/ the
 * global setup builds) adds a device for a qcow2 image, and the kernel's block layer is the
 * client: dd/cmp against `qemu-img convert -O raw`, fio with crc32c verification, discard and
 * zero-out, ext4 on top, list/del, a read-only device, delete under load, kill -9 (dead device
 * deleted by `del`) and user recovery (`add --recoverable`, kill -9, `recover`). Each check in the
 * guest prints one "check NAME: VALUE" line; the image is judged on the host by qemu-img afterwards.
 * Skipped without the VM cache (`bash test/vm/setup.sh`) or the ublk addon.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadUblkAddon } from '../../src/ublk/native.js';
import { tables } from '../support/corrupt-image.js';
import { runInVm, vmAvailable, type VmResult } from '../support/vm.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const available = vmAvailable();
const addon = loadUblkAddon() !== null;
const reason = !available.ok ? available.reason : !addon ? 'the ublk addon is not built' : '';

/** The guest's preamble: the command, and a helper that prints a check line from a command's status. */
const PRELUDE = [
  'set -u',
  `Q="node ${REPO}bin/qcow2 ublk"`,
  'check() { local name=$1; shift; if "$@" >/tmp/check.out 2>&1; then echo "check $name: ok"; else echo "check $name: FAILED ($?)"; cat /tmp/check.out; fi; }',
  'modprobe ublk_drv || echo "check modprobe: FAILED"',
].join('\n');

function checks(run: VmResult): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of run.output.matchAll(/^check ([\w-]+): (.*)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

function qemuImg(args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

describe.skipIf(reason !== '')(`qcow2 ublk in a VM${reason ? ` (skipped: ${reason})` : ''}`, () => {
  describe('data path', () => {
    let dir: string;
    let run: VmResult;
    let got: Map<string, string>;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'qcow2-ublk-test-'));
      const image = join(dir, 'a.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xaa 0 1M', '-c', 'write -P 0x55 5M 300k', '-c', 'write -z 10M 1M', '-c', 'write -P 0x11 63M 1M', image]);
      qemuImg(['convert', '-O', 'raw', image, join(dir, 'a.raw')]);
      // A corrupt image: the L2 entry of guest cluster 1 points at an unaligned host offset.
      const bad = join(dir, 'bad.qcow2');
      qemuImg(['create', '-q', '-f', 'qcow2', bad, '4M']);
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x33 0 256k', bad]);
      const t = await tables(bad);
      const entry = Buffer.alloc(8);
      entry.writeBigUInt64BE((1n << 63n) | BigInt(t.fileSize + 512));
      const fd = openSync(bad, 'r+');
      writeSync(fd, entry, 0, 8, t.l2EntryAt(0, 1));
      closeSync(fd);
      writeFileSync(join(dir, 'c33'), Buffer.alloc(65536, 0x33));
      const script = [
        PRELUDE,
        'D=$($Q add a.qcow2 | tail -1); echo "check path: $D"',
        'echo "check size: $(blockdev --getsize64 $D) $(blockdev --getss $D) $(blockdev --getpbsz $D) $(blockdev --getioopt $D)"',
        'Q1=/sys/block/$(basename $D)/queue; echo "check queue: $(cat $Q1/write_cache)/$(cat $Q1/fua)/$(cat $Q1/discard_granularity)/$(cat $Q1/max_sectors_kb)"',
        'check read-cmp bash -c "dd if=$D bs=1M status=none | cmp - a.raw"',
        'head -c 8M /dev/urandom > rnd',
        'check write-readback bash -c "dd if=rnd of=$D bs=64k seek=32 oflag=direct status=none && dd if=$D bs=64k skip=32 count=128 iflag=direct status=none | cmp - rnd"',
        'check fio-verify fio --name=v --rw=randwrite --direct=1 --ioengine=libaio --bs=8k --iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 --filename=$D --offset=16M --size=16M',
        'head -c 1M /dev/zero > zero',
        'check zeroout bash -c "blkdiscard -z -o 1048576 -l 1048576 $D && dd if=$D bs=1M skip=1 count=1 iflag=direct status=none | cmp - zero"',
        'check discard blkdiscard -f -o 2097152 -l 1048576 $D',
        'check flush bash -c "dd if=rnd of=$D bs=1M count=1 seek=40 conv=fsync oflag=direct status=none"',
        'echo "check list: $($Q list --output=json | node -e \'const d=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(d.map(x=>x.id+"/"+x.state+"/"+x.format).join(","))\')"',
        'dd if=$D of=dump.raw bs=1M status=none',
        'check del $Q del 0',
        'echo "check after-del: $(ls /dev | grep -c ublkb)"',
        // A read-only device: reads work, writes fail.
        'D=$($Q add -r a.qcow2 | tail -1)',
        'check ro-read bash -c "dd if=$D bs=1M count=1 status=none | cmp -n 1048576 - dump.raw"',
        'if dd if=rnd of=$D bs=4k count=1 oflag=direct status=none 2>/dev/null; then echo "check ro-write: accepted"; else echo "check ro-write: refused"; fi',
        'check ro-del $Q del --all',
        // An engine error fails its request (EIO), is logged once, and the device stays up.
        'D=$($Q add -r bad.qcow2 | tail -1)',
        'for i in 1 2; do if dd if=$D of=/dev/null bs=64k skip=1 count=1 iflag=direct status=none 2>/dev/null; then echo "check bad-read-$i: accepted"; else echo "check bad-read-$i: refused"; fi; done',
        'check good-read bash -c "dd if=$D bs=64k skip=2 count=1 iflag=direct status=none | cmp - c33"',
        'echo "check bad-log: $(grep -c \"engine error\" /run/qcow2-ublk/0.log)"',
        'check bad-del $Q del 0',
      ].join('\n');
      run = await runInVm(script, { cwd: dir, writable: [dir], timeoutMs: 420_000 });
      got = checks(run);
    }, 480_000);
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('adds /dev/ublkb0 with the announced geometry and cache', () => {
      expect(got.get('path'), run.output).toBe('/dev/ublkb0');
      expect(got.get('size')).toBe(`${64 * 1024 * 1024} 512 4096 65536`);
      expect(got.get('queue')).toBe('write back/1/65536/512');
    });

    it('reads what qemu-img reads, writes read back, fio verifies', () => {
      for (const name of ['read-cmp', 'write-readback', 'fio-verify', 'zeroout', 'discard', 'flush']) expect(got.get(name), `${name}\n${run.output}`).toBe('ok');
    });

    it('lists and deletes', () => {
      expect(got.get('list')).toBe('0/live/qcow2');
      expect(got.get('del'), run.output).toBe('ok');
      expect(got.get('after-del')).toBe('0');
    });

    it('leaves a clean image holding what the device held', () => {
      const image = join(dir, 'a.qcow2');
      expect(qemuImg(['check', image])).toMatch(/No errors were found/);
      expect(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', join(dir, 'dump.raw'), image])).toMatch(/Images are identical/);
    });

    it('fails a request the engine cannot serve with an error, logs it once, and stays up', () => {
      expect(got.get('bad-read-1'), run.output).toBe('refused');
      expect(got.get('bad-read-2')).toBe('refused');
      expect(got.get('good-read'), run.output).toBe('ok');
      expect(got.get('bad-log')).toBe('1');
      expect(got.get('bad-del')).toBe('ok');
    });

    it('serves read-only with -r', () => {
      expect(got.get('ro-read'), run.output).toBe('ok');
      expect(got.get('ro-write')).toBe('refused');
      expect(got.get('ro-del')).toBe('ok');
    });
  });

  describe('lifecycle', () => {
    let dir: string;
    let run: VmResult;
    let got: Map<string, string>;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'qcow2-ublk-test-'));
      qemuImg(['create', '-q', '-f', 'qcow2', join(dir, 'b.qcow2'), '256M']);
      const script = [
        PRELUDE,
        'D=$($Q add b.qcow2 | tail -1)',
        'mkdir -p /mnt/u',
        'check ext4 bash -c "mkfs.ext4 -q -F $D && mount $D /mnt/u && head -c 16M /dev/urandom > /mnt/u/f && md5sum < /mnt/u/f > /tmp/m1 && umount /mnt/u && fsck.ext4 -fn $D && mount $D /mnt/u && md5sum < /mnt/u/f | cmp - /tmp/m1 && umount /mnt/u"',
        // Delete under load: fio gets errors once the disk is gone; del still finishes clean.
        'fio --name=l --rw=randrw --direct=1 --ioengine=libaio --bs=4k --iodepth=32 --filename=$D --size=64M --time_based --runtime=60 >/dev/null 2>&1 & F=$!',
        'sleep 3; check del-under-load $Q del 0; wait $F',
        'echo "check gone: $(ls /dev | grep -c ublkb)"',
        'qemu-img check -q b.qcow2 && echo "check image-after-load: ok"',
        // kill -9 of a plain device: dead; del deletes it.
        'D=$($Q add b.qcow2 | tail -1); kill -9 $(cat /run/qcow2-ublk/0.pid); sleep 1',
        'echo "check killed-state: $($Q list --output=json | node -e \'console.log(JSON.parse(require("fs").readFileSync(0,"utf8"))[0]?.state)\')"',
        'check del-dead $Q del 0',
        'echo "check gone2: $(ls /dev | grep -c ublkb)"',
        // Recovery: data made durable by a flush survives the kill; a read issued meanwhile completes after recover.
        'D=$($Q add --recoverable b.qcow2 | tail -1); P=$(cat /run/qcow2-ublk/0.pid)',
        'head -c 4M /dev/urandom > rnd4; dd if=rnd4 of=$D bs=1M oflag=direct conv=fsync status=none',
        'kill -9 $P; sleep 1',
        'echo "check quiesced: $($Q list --output=json | node -e \'console.log(JSON.parse(require("fs").readFileSync(0,"utf8"))[0]?.state)\')"',
        '(dd if=$D bs=1M count=4 iflag=direct status=none > rd4) & R=$!',
        'sleep 1; check recover $Q recover 0',
        'wait $R; check recovered-read cmp rd4 rnd4',
        'check del-recovered $Q del 0',
      ].join('\n');
      run = await runInVm(script, { cwd: dir, writable: [dir], timeoutMs: 420_000 });
      got = checks(run);
    }, 480_000);
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('carries ext4 (mkfs, mount, write, fsck, read back)', () => {
      expect(got.get('ext4'), run.output).toBe('ok');
    });

    it('deletes under load and leaves a clean image', () => {
      expect(got.get('del-under-load'), run.output).toBe('ok');
      expect(got.get('gone')).toBe('0');
      expect(got.get('image-after-load')).toBe('ok');
    });

    it('deletes a device whose server was killed', () => {
      expect(got.get('killed-state'), run.output).toBe('dead');
      expect(got.get('del-dead')).toBe('ok');
      expect(got.get('gone2')).toBe('0');
    });

    it('recovers a recoverable device after kill -9', () => {
      expect(got.get('quiesced'), run.output).toBe('quiesced');
      expect(got.get('recover'), run.output).toBe('ok');
      expect(got.get('recovered-read'), run.output).toBe('ok');
      expect(got.get('del-recovered')).toBe('ok');
      // The killed servers never closed the image: the last one did; it is consistent.
      expect(qemuImg(['check', join(dir, 'b.qcow2')])).toMatch(/No errors were found/);
    });
  });
});
