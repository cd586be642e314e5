/**
 * TLS for the NBD server (NetworkBlockDevice/nbd doc/proto.md, "TLS support"): the credentials
 * read at start, and the upgrade of a connection after NBD_OPT_STARTTLS.
 *
 * - x509 (`--tls-creds DIR`), QEMU's tls-creds-x509 layout: DIR/ca-cert.pem, DIR/server-cert.pem,
 *   DIR/server-key.pem, and DIR/ca-crl.pem if present. With `verifyPeer` the client must present
 *   a certificate the CA signed (and the CRL does not revoke); without, none is asked for.
 * - PSK (`--tls-psk FILE`), QEMU's tls-creds-psk keys file: lines `username:hexkey`. TLS 1.2 with
 *   the PSK cipher suites (Node's `pskCallback` serves TLS 1.2 PSK only).
 * Key material is never logged: errors name the file and what is wrong with it, nothing more.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, Server as TlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { usage } from '../errors.js';

export interface TlsConfig {
  kind: 'x509' | 'psk';
  /** What the verbose log says (no key material). */
  describe: string;
  /** The tls.Server options (secure context, client certificates, PSK). */
  options: TlsOptions;
  /** x509 with verify-peer: a client whose certificate is not verified is dropped. */
  verifyPeer: boolean;
}

/** TLS 1.2 PSK suites GnuTLS (libnbd, QEMU) and OpenSSL share, strongest first. */
const PSK_CIPHERS = [
  'ECDHE-PSK-CHACHA20-POLY1305',
  'DHE-PSK-AES256-GCM-SHA384',
  'DHE-PSK-AES128-GCM-SHA256',
  'PSK-AES256-GCM-SHA384',
  'PSK-AES128-GCM-SHA256',
  'ECDHE-PSK-AES256-CBC-SHA384',
  'ECDHE-PSK-AES128-CBC-SHA256',
  'PSK-CHACHA20-POLY1305',
].join(':');

function readCred(path: string, what: string, optional = false): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (optional && code === 'ENOENT') return undefined;
    throw usage(`nbd: --tls-creds: cannot read the ${what} '${path}': ${code ?? (err as Error).message}`);
  }
}

/** One line, without anything read from the files (OpenSSL's reason only). */
function reason(err: unknown): string {
  const e = err as { reason?: string; code?: string; message?: string };
  return (e.reason ?? e.code ?? e.message ?? 'invalid').split('\n')[0]!;
}

/** x509 credentials from QEMU's directory layout; a usage error if they are missing or invalid. */
export function loadX509(dir: string, verifyPeer: boolean): TlsConfig {
  const ca = readCred(join(dir, 'ca-cert.pem'), 'CA certificate')!;
  const cert = readCred(join(dir, 'server-cert.pem'), 'server certificate')!;
  const key = readCred(join(dir, 'server-key.pem'), 'server key')!;
  const crl = readCred(join(dir, 'ca-crl.pem'), 'CRL', true);
  const material: TlsOptions = { ca, cert, key, ...(crl ? { crl } : {}), minVersion: 'TLSv1.2' };
  try {
    // Checked at start (a key that does not match its certificate, a file that is not PEM).
    createSecureContext(material);
  } catch (err) {
    throw usage(`nbd: --tls-creds: the credentials in '${dir}' are not usable: ${reason(err)}`);
  }
  return {
    kind: 'x509',
    describe: `x509 from '${dir}'${verifyPeer ? ', client certificates verified' : ''}`,
    options: { ...material, requestCert: verifyPeer, rejectUnauthorized: verifyPeer },
    verifyPeer,
  };
}

/** The keys of a QEMU tls-creds-psk keys file (`username:hexkey` per line). */
export function parsePskKeys(text: string, file: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const user = colon > 0 ? line.slice(0, colon) : '';
    const hex = colon > 0 ? line.slice(colon + 1).trim() : '';
    if (user === '' || hex === '' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
      throw usage(`nbd: --tls-psk: line ${i + 1} of '${file}' is not 'username:hexkey'`);
    }
    keys.set(user, Buffer.from(hex, 'hex'));
  }
  if (keys.size === 0) throw usage(`nbd: --tls-psk: '${file}' holds no key`);
  return keys;
}

export function loadPsk(file: string): TlsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usage(`nbd: --tls-psk: cannot read the keys file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const keys = parsePskKeys(text, file);
  return {
    kind: 'psk',
    describe: `PSK from '${file}' (${keys.size} user${keys.size === 1 ? '' : 's'})`,
    options: {
      ciphers: PSK_CIPHERS,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      // An unknown user: no key, the handshake fails.
      pskCallback: (_socket: TLSSocket, identity: string) => keys.get(identity) ?? null,
    },
    verifyPeer: false,
  };
}

/**
 * Runs the server side of the TLS handshake over `socket` (nothing else may be reading it);
 * `ready` resolves with the TLS socket once the handshake is done (and, with verify-peer, the
 * client's certificate verified against the CA and CRL), rejects otherwise (the socket is then
 * destroyed). The socket is handed to a tls.Server of its own (`emit('connection')`, the
 * documented way to give a server a connection it did not accept), so that Node's server logic
 * (certificate verification, rejectUnauthorized, PSK) applies as for any TLS server.
 */
export function upgrade(socket: Socket, cfg: TlsConfig): { abort: (err: Error) => void; ready: Promise<TLSSocket> } {
  const server = new TlsServer(cfg.options as TlsOptions);
  const ready = new Promise<TLSSocket>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    server.once('secureConnection', (tls: TLSSocket) => {
      if (settled) return;
      if (cfg.verifyPeer && !tls.authorized) {
        fail(new Error(`client certificate refused: ${String(tls.authorizationError ?? 'none presented')}`));
        return;
      }
      settled = true;
      resolve(tls);
    });
    server.once('tlsClientError', (err: Error) => fail(new Error(`TLS handshake failed: ${reason(err)}`)));
    socket.once('close', () => fail(new Error('the connection closed during the TLS handshake')));
    // The server socket is half-open capable: a client gone mid-handshake may only end its side.
    socket.once('end', () => fail(new Error('the connection closed during the TLS handshake')));
  });
  server.on('connection', () => {});
  server.emit('connection', socket);
  return {
    abort: (err: Error) => socket.destroy(err),
    ready: ready.then((tls) => {
      // An error after the handshake goes to the reader; this keeps an unhandled one from crashing.
      tls.on('error', () => {});
      return tls;
    }),
  };
}

/** TLS as a client: x509 (a CA, and a client certificate if the directory has one) or a PSK identity. */
export type ClientTls = { kind: 'x509'; ca: Buffer; cert?: Buffer; key?: Buffer; servername?: string } | { kind: 'psk'; identity: string; key: Buffer };

/**
 * Client credentials (`qcow2 nbd -L`): x509 from the same directory layout as QEMU's client side
 * (DIR/ca-cert.pem, and DIR/client-cert.pem with DIR/client-key.pem when present), or a PSK
 * identity from a keys file (user 'qemu', QEMU's default username, else the file's first).
 */
export function loadClientTls(creds: { kind: 'x509'; dir: string } | { kind: 'psk'; file: string }, servername: string | undefined): ClientTls {
  if (creds.kind === 'x509') {
    const ca = readCred(join(creds.dir, 'ca-cert.pem'), 'CA certificate')!;
    const cert = readCred(join(creds.dir, 'client-cert.pem'), 'client certificate', true);
    const key = readCred(join(creds.dir, 'client-key.pem'), 'client key', true);
    return { kind: 'x509', ca, ...(cert && key ? { cert, key } : {}), ...(servername ? { servername } : {}) };
  }
  let text: string;
  try {
    text = readFileSync(creds.file, 'utf8');
  } catch (err) {
    throw usage(`nbd: --tls-psk: cannot read the keys file '${creds.file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const keys = parsePskKeys(text, creds.file);
  const identity = keys.has('qemu') ? 'qemu' : keys.keys().next().value!;
  return { kind: 'psk', identity, key: keys.get(identity)! };
}
