/**
 * `qcow2 nbd` as real clients see it, next to `qemu-nbd` on the same image: qemu-img info,
 * compare and map over `nbd+unix://`, nbdinfo --map (base:allocation and qemu:allocation-depth),
 * qemu-io writes through the server judged by qemu-img check and compare afterwards, and a clean
 * exit on SIGTERM. Missing tools fail the tests (nothing here skips).
 */
import { execa, type ResultPromise } from 'execa';
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QCOW2_BIN } from '../support/cli.js';
import { requireTool } from '../support/tools.js';

const MiB = 1024 * 1024;

let dir: string;
let top: string;

const uri = (sock: string) => `nbd+unix:///?socket=${sock}`;

interface Ours {
  proc: ResultPromise;
  stderr: () => string;
}

/** Starts `qcow2 nbd -v -k SOCK ARGS...` and waits until it serves. */
async function startOurs(sock: string, args: string[]): Promise<Ours> {
  const proc = execa(process.execPath, [QCOW2_BIN, 'nbd', '-v', '-k', sock, ...args], { reject: false });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`qcow2 nbd did not start: ${err}`)), 20_000);
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes(': serving ')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`qcow2 nbd exited (${r.exitCode}): ${err}`));
    }, reject);
  });
  return { proc, stderr: () => err };
}

/** Stops our server with SIGTERM; resolves with its exit code. */
async function stopOurs(ours: Ours): Promise<number | undefined> {
  ours.proc.kill('SIGTERM');
  const r = await ours.proc;
  return r.exitCode;
}

/** Starts qemu-nbd in the background (it returns once its socket listens); returns its pid. */
async function startQemuNbd(sock: string, args: string[]): Promise<number> {
  const pidFile = `${sock}.pid`;
  await execa('qemu-nbd', ['--fork', '--pid-file', pidFile, '-k', sock, ...args]);
  return Number((await readFile(pidFile, 'utf8')).trim());
}

async function stopQemuNbd(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  for (const tool of ['qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo'] as const) await requireTool(tool);
  dir = await mkdtemp(join(tmpdir(), 'nbd-smoke-'));
  // A two-layer chain: data in both layers, a zero cluster on top, unallocated ranges.
  const base = join(dir, 'base.qcow2');
  top = join(dir, 'top.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 2M', '-c', 'write -P 0x22 8M 1M', '-c', 'write -P 0x44 20M 64k', base]);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x33 1M 2M', '-c', 'write -z 8M 512k', '-c', 'write -P 0x55 32M 192k', '-c', 'write -z 40M 1M', top]);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('qcow2 nbd, read-only, next to qemu-nbd', () => {
  let ours: Ours;
  let qemuPid: number;
  const sockOurs = () => join(dir, 'ours.sock');
  const sockQemu = () => join(dir, 'qemu.sock');

  beforeAll(async () => {
    ours = await startOurs(sockOurs(), ['-t', '-e', '4', '-r', '-A', '-f', 'qcow2', top]);
    qemuPid = await startQemuNbd(sockQemu(), ['-t', '-e', '4', '-r', '-A', '-f', 'qcow2', top]);
  });

  afterAll(async () => {
    if (qemuPid) await stopQemuNbd(qemuPid);
    if (ours) expect(await stopOurs(ours)).toBe(0);
  });

  it('qemu-img info sees the virtual size', async () => {
    const r = await execa('qemu-img', ['info', '--output=json', uri(sockOurs())]);
    const info = JSON.parse(r.stdout) as { 'virtual-size': number; format: string };
    expect(info['virtual-size']).toBe(64 * MiB);
    expect(info.format).toBe('raw');
  });

  it('qemu-img compare: the export reads as the image', async () => {
    const r = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', top, uri(sockOurs())], { reject: false });
    expect(r.stdout).toContain('Images are identical');
    expect(r.exitCode).toBe(0);
  });

  it('qemu-img map over NBD is what qemu-nbd gives for the same image', async () => {
    const map = async (sock: string) => (await execa('qemu-img', ['map', '--output=json', '-f', 'raw', uri(sock)])).stdout;
    const [a, b] = [await map(sockOurs()), await map(sockQemu())];
    expect(a).toBe(b);
    expect(JSON.parse(a).length).toBeGreaterThan(3);
  });

  it('nbdinfo --map (base:allocation and qemu:allocation-depth) is what qemu-nbd gives', async () => {
    for (const ctx of ['--map', '--map=qemu:allocation-depth']) {
      const ourMap = (await execa('nbdinfo', [ctx, uri(sockOurs())])).stdout;
      const qemuMap = (await execa('nbdinfo', [ctx, uri(sockQemu())])).stdout;
      expect(ourMap, ctx).toBe(qemuMap);
    }
  });

  it('nbdinfo reports a read-only export with multi-conn, no TLS needed', async () => {
    const r = await execa('nbdinfo', ['--json', uri(sockOurs())]);
    const info = JSON.parse(r.stdout) as { exports: Array<Record<string, unknown>> };
    const e = info.exports[0]!;
    expect(e['export-size']).toBe(64 * MiB);
    expect(e['is_read_only']).toBe(true);
    expect(e['can_multi_conn']).toBe(true);
    expect(e['is_rotational']).toBe(false);
    expect(e['can_cache']).toBe(true);
    expect(e['block_size_maximum']).toBe(32 * MiB);
    const contexts = (await execa('nbdinfo', ['--list', '--json', uri(sockOurs())])).stdout;
    expect(contexts).toContain('base:allocation');
    expect(contexts).toContain('qemu:allocation-depth');
  });
});

describe('qcow2 nbd, writable', () => {
  it('qemu-io writes through the server; SIGTERM exits 0; qemu-img check is clean and the image is what qemu-io makes directly', async () => {
    const ours = join(dir, 'w-ours.qcow2');
    const theirs = join(dir, 'w-qemu.qcow2');
    await copyFile(top, ours);
    await copyFile(top, theirs);
    const ops = ['write -P 0x5a 512k 128k', 'write -z 8M 1M', 'write -P 0x66 63M 1M', 'write -P 0x77 5000 3000', 'flush', 'read -P 0x5a 512k 128k'];
    const sock = join(dir, 'w.sock');
    const server = await startOurs(sock, ['-t', '-f', 'qcow2', ours]);
    const r = await execa('qemu-io', ['-f', 'raw', ...ops.flatMap((c) => ['-c', c]), uri(sock)], { reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(await stopOurs(server)).toBe(0);
    await execa('qemu-io', ['-f', 'qcow2', ...ops.flatMap((c) => ['-c', c]), theirs]);
    const check = await execa('qemu-img', ['check', ours], { reject: false });
    expect(check.stdout).toContain('No errors were found');
    expect(check.exitCode).toBe(0);
    const cmp = await execa('qemu-img', ['compare', ours, theirs], { reject: false });
    expect(cmp.exitCode).toBe(0);
  });

  it('without -t the server exits 0 when its client leaves', async () => {
    const sock = join(dir, 'once.sock');
    const server = await startOurs(sock, ['-r', '-f', 'qcow2', top]);
    await execa('nbdinfo', [uri(sock)]);
    const r = await server.proc;
    expect(r.exitCode).toBe(0);
    await expect(stat(sock)).rejects.toThrow();
  });

  it('a writable export of a probed raw image is refused; -f raw serves it', async () => {
    const raw = join(dir, 'disk.raw');
    await execa('qemu-img', ['create', '-q', '-f', 'raw', raw, '4M']);
    const refused = await execa(process.execPath, [QCOW2_BIN, 'nbd', '-k', join(dir, 'raw.sock'), raw], { reject: false });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/^qcow2 nbd: usage: .*-f raw/);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    const sock = join(dir, 'raw.sock');
    const server = await startOurs(sock, ['-t', '-f', 'raw', raw]);
    await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0x12 0 64k', uri(sock)]);
    expect(await stopOurs(server)).toBe(0);
    const back = await execa('qemu-io', ['-f', 'raw', '-c', 'read -P 0x12 0 64k', raw]);
    expect(back.stdout).not.toContain('Pattern verification failed');
  });

  it('-s: writes go to a temporary overlay; the image is not touched', async () => {
    const before = await readFile(top);
    const sock = join(dir, 's.sock');
    const server = await startOurs(sock, ['-t', '-s', '-f', 'qcow2', top]);
    await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0x99 0 1M', '-c', 'read -P 0x99 0 1M', uri(sock)]);
    expect(await stopOurs(server)).toBe(0);
    expect(Buffer.compare(await readFile(top), before)).toBe(0);
  });
});

describe('qcow2 nbd, listening and daemon options', () => {
  it('TCP: -b 127.0.0.1 -p 0 binds a free port, said on stderr; qemu-img compare over nbd://', async () => {
    const proc = execa(process.execPath, [QCOW2_BIN, 'nbd', '-v', '-t', '-r', '-b', '127.0.0.1', '-p', '0', '-f', 'qcow2', top], { reject: false });
    let err = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no port: ${err}`)), 20_000);
      proc.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /on 127\.0\.0\.1:(\d+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    const r = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', top, `nbd://127.0.0.1:${port}`], { reject: false });
    expect(r.exitCode).toBe(0);
    proc.kill('SIGTERM');
    expect((await proc).exitCode).toBe(0);
  });

  it('-e 1: a second client is refused with the reason; once the first leaves, it is served', async () => {
    const sock = join(dir, 'e1.sock');
    const server = await startOurs(sock, ['-t', '-e', '1', '-r', '-f', 'qcow2', top]);
    const first = connect(sock);
    await new Promise<void>((resolve) => first.once('data', () => resolve()));
    const refused = await execa('nbdinfo', [uri(sock)], { reject: false });
    expect(refused.exitCode).not.toBe(0);
    // NBD_REP_ERR_POLICY (nbdinfo does not print the server's message; test/unit/nbd-protocol checks it).
    expect(refused.stderr).toContain('nbd_opt_go');
    expect(server.stderr()).toContain('client 2: connected (over the limit of 1: refusing)');
    first.destroy();
    for (let i = 0; i < 50 && !server.stderr().includes('client 1: handshake ended'); i++) await new Promise((r) => setTimeout(r, 20));
    const served = await execa('nbdinfo', ['--size', uri(sock)]);
    expect(served.stdout.trim()).toBe(String(64 * MiB));
    expect(await stopOurs(server)).toBe(0);
  });

  it('--fork --pid-file: the command exits 0 once the socket listens; the daemon stops on SIGTERM', async () => {
    const sock = join(dir, 'fork.sock');
    const pidFile = join(dir, 'fork.pid');
    const r = await execa(process.execPath, [QCOW2_BIN, 'nbd', '--fork', '--pid-file', pidFile, '-t', '-r', '-k', sock, '-f', 'qcow2', top], { reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect((await execa('nbdinfo', ['--size', uri(sock)])).stdout.trim()).toBe(String(64 * MiB));
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(stat(pidFile)).rejects.toThrow();
    await expect(stat(sock)).rejects.toThrow();
  });

  it('--fork: a server that cannot start says why and exits 1', async () => {
    const r = await execa(process.execPath, [QCOW2_BIN, 'nbd', '--fork', '-k', join(dir, 'nofile.sock'), '-f', 'qcow2', join(dir, 'missing.qcow2')], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^qcow2 nbd: io: cannot open/);
  });

  it('usage errors are one typed line, exit 1', async () => {
    for (const [args, pattern] of [
      [['-k', 'x.sock', '-p', '1234', top], /^qcow2 nbd: usage: .*cannot be combined/],
      [['--discard=sometimes', top], /^qcow2 nbd: usage: .*discard/],
      [['--detect-zeroes=unmap', top], /^qcow2 nbd: usage: .*--detect-zeroes=unmap needs --discard=unmap/],
      [['-l', 'snap1', '-k', join(dir, 'nosnap.sock'), top], /^qcow2 nbd: usage: snapshot 'snap1' does not exist/],
      [['-f', 'vmdk', top], /^qcow2 nbd: usage: /],
      // --untrusted: the backing file top.qcow2 names is not opened.
      [['--untrusted', '-r', '-k', join(dir, 'untrusted.sock'), '-f', 'qcow2', top], /^qcow2 nbd: unsupported: refusing to open the backing file/],
    ] as const) {
      const r = await execa(process.execPath, [QCOW2_BIN, 'nbd', ...args], { reject: false });
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
    }
  });
});
