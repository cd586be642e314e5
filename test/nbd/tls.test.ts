/**
 * NBD over TLS (NetworkBlockDevice/nbd doc/proto.md, "TLS support"): `qcow2 nbd --tls-creds DIR`
 * (x509, QEMU's file layout), `--tls-verify-peer` and `--tls-psk FILE`, driven by libnbd's nbdinfo
 * and nbdcopy and by a raw client, and the behaviours qemu-nbd with a tls-creds-x509 object shares.
 * Certificates and keys are made with openssl in a temporary directory at test time. Missing
 * tools fail the tests (nothing here skips).
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QCOW2_BIN, qcow2 } from '../support/cli.js';
import { type NbdServer, type ServerKind, startServer, stopAllServers } from '../support/nbd.js';
import { ClosedError, INFO, OPT, REP, WireClient } from '../support/nbd-wire.js';
import { requireTool, toolEnv } from '../support/tools.js';
import { KNOWN, makeKnownImage } from './fixtures.js';

/** NBD_REP_ERR_TLS_REQD: 2^31 + 5 (proto.md, "Option reply types"). */
const ERR_TLS_REQD = 0x80000005;
const ERR_INVALID = 0x80000003;
const ERR_POLICY = 0x80000002;

let dir: string;
let image: string;
let rawRef: string;
/** Server credentials (QEMU's layout), the client's (libnbd's), a client with the CA only. */
let srvDir: string;
let cliDir: string;
let noCertDir: string;
/** A client certificate signed by another CA (with our CA to check the server). */
let rogueDir: string;
let pskFile: string;

async function openssl(args: string[]): Promise<void> {
  await execa('openssl', args, { cwd: dir, env: toolEnv() });
}

/** A CA, a server certificate (CN localhost, SAN DNS:localhost, IP:127.0.0.1) and a client one. */
async function makeCertificates(): Promise<void> {
  srvDir = join(dir, 'server');
  cliDir = join(dir, 'client');
  noCertDir = join(dir, 'client-no-cert');
  for (const d of [srvDir, cliDir, noCertDir]) await mkdir(d);
  const days = ['-days', '2'];
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', ...days, '-subj', '/CN=qcow2 test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const sign = async (name: string, subject: string, ext: string, keyOut: string, certOut: string) => {
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyOut, '-out', `${name}.csr`, '-subj', subject]);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', certOut, ...days, '-extfile', `${name}.ext`]);
  };
  const common = 'keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n';
  await sign('server', '/CN=localhost', `subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n${common}`, join(srvDir, 'server-key.pem'), join(srvDir, 'server-cert.pem'));
  await sign('client', '/CN=client', `extendedKeyUsage=clientAuth\n${common}`, join(cliDir, 'client-key.pem'), join(cliDir, 'client-cert.pem'));
  for (const d of [srvDir, cliDir, noCertDir]) await copyFile(join(dir, 'ca-cert.pem'), join(d, 'ca-cert.pem'));
  rogueDir = join(dir, 'client-rogue');
  await mkdir(rogueDir);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rogue-ca-key.pem', '-out', 'rogue-ca-cert.pem', ...days, '-subj', '/CN=rogue CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await writeFile(join(dir, 'rogue.ext'), `extendedKeyUsage=clientAuth\n${common}`);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(rogueDir, 'client-key.pem'), '-out', 'rogue.csr', '-subj', '/CN=client']);
  await openssl(['x509', '-req', '-in', 'rogue.csr', '-CA', 'rogue-ca-cert.pem', '-CAkey', 'rogue-ca-key.pem', '-CAcreateserial', '-out', join(rogueDir, 'client-cert.pem'), ...days, '-extfile', 'rogue.ext']);
  await copyFile(join(dir, 'ca-cert.pem'), join(rogueDir, 'ca-cert.pem'));
}

function socketOf(srv: NbdServer): string {
  if (!('path' in srv.endpoint)) throw new Error('unix socket expected');
  return srv.endpoint.path;
}

const tlsUri = (srv: NbdServer, certDir: string) => `nbds+unix:///${srv.exportName}?socket=${socketOf(srv)}&tls-certificates=${certDir}`;
const plainUri = (srv: NbdServer) => `nbd+unix:///${srv.exportName}?socket=${socketOf(srv)}`;
// libnbd 1.14 takes the PSK user name from the URI's user part (no tls-username parameter yet).
const pskUri = (srv: NbdServer, user: string, file: string) => `nbds+unix://${user}@/${srv.exportName}?socket=${socketOf(srv)}&tls-psk-file=${file}`;

async function nbdinfoSize(uri: string) {
  return execa('nbdinfo', ['--size', uri], { env: toolEnv(), reject: false, timeout: 30_000 });
}

function x509Args(kind: ServerKind, opts: { verifyPeer?: boolean } = {}): string[] {
  if (kind === 'ours') return ['--tls-creds', srvDir, ...(opts.verifyPeer ? ['--tls-verify-peer'] : [])];
  return ['--object', `tls-creds-x509,id=tls0,dir=${srvDir},endpoint=server,verify-peer=${opts.verifyPeer ? 'on' : 'off'}`, '--tls-creds', 'tls0'];
}

async function serve(kind: ServerKind, extraArgs: string[]): Promise<NbdServer> {
  return startServer(kind, image, { format: 'qcow2', exportName: 'disk', extraArgs });
}

beforeAll(async () => {
  for (const t of ['openssl', 'qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo', 'nbdcopy'] as const) await requireTool(t);
  dir = await mkdtemp(join(tmpdir(), 'nbd-tls-'));
  image = join(dir, 'disk.qcow2');
  await makeKnownImage(image);
  rawRef = join(dir, 'ref.raw');
  await execa('qemu-img', ['convert', '-O', 'raw', image, rawRef]);
  await makeCertificates();
  pskFile = join(dir, 'keys.psk');
  await writeFile(pskFile, `alice:${randomBytes(32).toString('hex')}\n`);
}, 120_000);

afterEach(async () => {
  await stopAllServers();
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A client without TLS asks for the export every way there is; none tells it anything. */
async function expectNothingWithoutTls(srv: NbdServer): Promise<void> {
  const info = await nbdinfoSize(plainUri(srv));
  expect(info.exitCode).not.toBe(0);
  expect(info.stdout).not.toContain(String(KNOWN.size));

  const c = await WireClient.connect(srv.endpoint);
  await c.start();
  for (const option of [OPT.INFO, OPT.GO]) {
    await c.sendOption(option, WireClient.goData('disk', [INFO.NAME, INFO.BLOCK_SIZE]));
    const replies = await c.optionReplies(option);
    expect(replies.map((r) => r.type)).toEqual([ERR_TLS_REQD]);
  }
  await c.sendOption(OPT.STRUCTURED_REPLY);
  expect((await c.optionReplies(OPT.STRUCTURED_REPLY)).map((r) => r.type)).toEqual([ERR_TLS_REQD]);
  await c.sendOption(OPT.LIST);
  const list = await c.optionReplies(OPT.LIST);
  expect(list.map((r) => r.type)).toEqual([ERR_TLS_REQD]);
  // NBD_OPT_EXPORT_NAME cannot fail politely: the connection is closed, the size never sent.
  await c.sendOption(OPT.EXPORT_NAME, Buffer.from('disk'));
  await expect(c.readExact(8 + 2, 5_000)).rejects.toBeInstanceOf(ClosedError);
  expect(c.pending).toBe(0);
  c.destroy();
}

async function expectCopyOverTls(srv: NbdServer, certDir: string): Promise<void> {
  const info = await nbdinfoSize(tlsUri(srv, certDir));
  expect(info.stderr).toBe('');
  expect(info.stdout.trim()).toBe(String(KNOWN.size));
  const out = join(dir, `copy-${srv.kind}.raw`);
  await execa('nbdcopy', [tlsUri(srv, certDir), out], { env: toolEnv(), timeout: 60_000 });
  await execa('cmp', [out, rawRef]);
  await rm(out, { force: true });
}

describe.each(['ours', 'qemu'] as const)('x509, %s server', (kind) => {
  it('nbdinfo reads the size and nbdcopy copies the image over TLS (nbds+unix, client certificate)', async () => {
    const srv = await serve(kind, x509Args(kind));
    await expectCopyOverTls(srv, cliDir);
  }, 60_000);

  it('a client without TLS gets no export data: GO/INFO/LIST are NBD_REP_ERR_TLS_REQD, EXPORT_NAME closes', async () => {
    const srv = await serve(kind, x509Args(kind));
    await expectNothingWithoutTls(srv);
  }, 60_000);

  it('verify-peer: a client without a certificate, or with one another CA signed, is refused; one with the CA-signed certificate is served', async () => {
    const srv = await serve(kind, x509Args(kind, { verifyPeer: true }));
    for (const certDir of [noCertDir, rogueDir]) {
      const refused = await nbdinfoSize(tlsUri(srv, certDir));
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stdout).not.toContain(String(KNOWN.size));
    }
    const served = await nbdinfoSize(tlsUri(srv, cliDir));
    expect(served.stdout.trim()).toBe(String(KNOWN.size));
  }, 60_000);
});

/** `qemu-nbd -L` and `qcow2 nbd -L` over TLS: both listings, byte for byte. */
async function listings(srv: NbdServer, oursTls: string[], qemuTls: string[]): Promise<{ ours: string; theirs: string; plain: { exitCode?: number; stderr: string } }> {
  const sock = socketOf(srv);
  const theirs = (await execa('qemu-nbd', ['-L', '-k', sock, ...qemuTls], { env: toolEnv(), stripFinalNewline: false })).stdout;
  const ours = await execa(process.execPath, [QCOW2_BIN, 'nbd', '-L', '-k', sock, ...oursTls], { reject: false, stripFinalNewline: false });
  expect(ours.exitCode, ours.stderr).toBe(0);
  const plain = await execa(process.execPath, [QCOW2_BIN, 'nbd', '-L', '-k', sock], { reject: false });
  return { ours: ours.stdout, theirs, plain: { exitCode: plain.exitCode, stderr: plain.stderr } };
}

describe.each(['ours', 'qemu'] as const)('-L over TLS, %s server', (kind) => {
  it('x509: qcow2 nbd -L --tls-creds prints what qemu-nbd -L prints; without TLS the listing is refused', async () => {
    const srv = await serve(kind, x509Args(kind));
    const l = await listings(srv, ['--tls-creds', cliDir], ['--object', `tls-creds-x509,id=tls0,dir=${cliDir},endpoint=client`, '--tls-creds', 'tls0', '--tls-hostname', 'localhost']);
    expect(l.ours).toContain("export: 'disk'");
    expect(l.ours).toBe(l.theirs);
    expect(l.plain.exitCode).toBe(1);
    expect(l.plain.stderr.trim()).toMatch(/^qcow2 nbd: io: nbd -L: the server refused to list its exports/);
  }, 60_000);

  it('PSK: qcow2 nbd -L --tls-psk prints what qemu-nbd -L prints', async () => {
    const srv = await serve(kind, pskArgs(kind));
    const l = await listings(srv, ['--tls-psk', pskFile], ['--object', `tls-creds-psk,id=tls0,dir=${dir},endpoint=client,username=alice`, '--tls-creds', 'tls0']);
    expect(l.ours).toContain("export: 'disk'");
    expect(l.ours).toBe(l.theirs);
  }, 60_000);
});

describe('x509, ours only', () => {
  it('without --tls-verify-peer, a client with the CA only is served', async () => {
    const srv = await serve('ours', x509Args('ours'));
    const info = await nbdinfoSize(tlsUri(srv, noCertDir));
    expect(info.stdout.trim()).toBe(String(KNOWN.size));
  }, 60_000);

  it('over TLS option haggling goes on; a second NBD_OPT_STARTTLS is NBD_REP_ERR_INVALID', async () => {
    const srv = await serve('ours', x509Args('ours'));
    const raw = connect(socketOf(srv));
    await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
    const plain = new Reader(raw);
    const greeting = await plain.read(18);
    expect(greeting.readUInt16BE(16) & 1).toBe(1);
    raw.write(u32(1));
    raw.write(WireClient.optionHeader(OPT.STARTTLS, 0));
    const ack = await readOptionReply(plain);
    expect(ack).toMatchObject({ option: OPT.STARTTLS, type: REP.ACK });
    plain.detach();
    const ca = await readFile(join(cliDir, 'ca-cert.pem'));
    const secure = tlsConnect({ socket: raw, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    const r = new Reader(secure);
    secure.write(WireClient.optionHeader(OPT.STARTTLS, 0));
    expect(await readOptionReply(r)).toMatchObject({ option: OPT.STARTTLS, type: ERR_INVALID });
    const go = WireClient.goData('disk', []);
    secure.write(Buffer.concat([WireClient.optionHeader(OPT.INFO, go.length), go]));
    const info = await readOptionReply(r);
    expect(info.type).toBe(REP.INFO);
    expect(info.data.readUInt16BE(0)).toBe(INFO.EXPORT);
    expect(info.data.readBigUInt64BE(2)).toBe(BigInt(KNOWN.size));
    secure.destroy();
  }, 60_000);

  it('without credentials NBD_OPT_STARTTLS is refused (NBD_REP_ERR_POLICY), as before', async () => {
    const srv = await serve('ours', []);
    const c = await WireClient.connect(srv.endpoint);
    await c.start();
    await c.sendOption(OPT.STARTTLS);
    expect((await c.optionReplies(OPT.STARTTLS)).map((r) => r.type)).toEqual([ERR_POLICY]);
    c.destroy();
  }, 60_000);

  it('missing or invalid credentials: a one-line usage error at start, exit 1, no key material', async () => {
    const missing = await qcow2(['nbd', '-k', join(dir, 'x.sock'), '--tls-creds', join(dir, 'nowhere'), image]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('ca-cert.pem');
    // A directory whose key does not match its certificate.
    const bad = join(dir, 'bad-creds');
    await mkdir(bad, { recursive: true });
    await copyFile(join(srvDir, 'ca-cert.pem'), join(bad, 'ca-cert.pem'));
    await copyFile(join(srvDir, 'server-cert.pem'), join(bad, 'server-cert.pem'));
    await copyFile(join(cliDir, 'client-key.pem'), join(bad, 'server-key.pem'));
    const mismatched = await qcow2(['nbd', '-k', join(dir, 'x.sock'), '--tls-creds', bad, image]);
    expect(mismatched.exitCode).toBe(1);
    expect(mismatched.stderr.trim().split('\n')).toHaveLength(1);
    expect(mismatched.stderr).not.toContain('PRIVATE KEY');
    const badPsk = join(dir, 'bad.psk');
    await writeFile(badPsk, 'alice:not-hex-at-all\n');
    const psk = await qcow2(['nbd', '-k', join(dir, 'x.sock'), '--tls-psk', badPsk, image]);
    expect(psk.exitCode).toBe(1);
    expect(psk.stderr.trim().split('\n')).toHaveLength(1);
    expect(psk.stderr).not.toContain('not-hex-at-all');
  }, 60_000);
});

/** Ours: --tls-psk FILE; qemu-nbd: a tls-creds-psk object, whose dir holds keys.psk. */
function pskArgs(kind: ServerKind): string[] {
  if (kind === 'ours') return ['--tls-psk', pskFile];
  return ['--object', `tls-creds-psk,id=tls0,dir=${dir},endpoint=server`, '--tls-creds', 'tls0'];
}

describe.each(['ours', 'qemu'] as const)('PSK, %s server', (kind) => {
  it('nbdinfo with the keys file and user alice reads the size, nbdcopy copies; a client without TLS gets nothing', async () => {
    const srv = await serve(kind, pskArgs(kind));
    const info = await nbdinfoSize(pskUri(srv, 'alice', pskFile));
    expect(info.stderr).toBe('');
    expect(info.stdout.trim()).toBe(String(KNOWN.size));
    const out = join(dir, `copy-psk-${kind}.raw`);
    await execa('nbdcopy', [pskUri(srv, 'alice', pskFile), out], { env: toolEnv(), timeout: 60_000 });
    await execa('cmp', [out, rawRef]);
    await expectNothingWithoutTls(srv);
  }, 60_000);

  it('a user the server does not know, or the wrong key, is refused', async () => {
    const srv = await serve(kind, pskArgs(kind));
    const other = join(dir, 'other.psk');
    await writeFile(other, `bob:${randomBytes(32).toString('hex')}\nalice:${randomBytes(32).toString('hex')}\n`);
    for (const user of ['bob', 'alice']) {
      const r = await nbdinfoSize(pskUri(srv, user, other));
      expect(r.exitCode).not.toBe(0);
      expect(r.stdout).not.toContain(String(KNOWN.size));
    }
  }, 60_000);
});

// ------------------------------------------------------------------ a tiny reader for any stream

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

class Reader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly onData = (d: Buffer) => {
    this.buf = Buffer.concat([this.buf, d]);
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };
  constructor(private readonly stream: Duplex | Socket) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
  }
  async read(n: number): Promise<Buffer> {
    const deadline = Date.now() + 10_000;
    while (this.buf.length < n) {
      if (this.ended) throw new Error('closed');
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  detach(): void {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.pause();
  }
}

async function readOptionReply(r: Reader): Promise<{ option: number; type: number; data: Buffer }> {
  const h = await r.read(20);
  return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await r.read(h.readUInt32BE(16)) };
}
