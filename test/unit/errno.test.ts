/**
 * errnoOf / errnoText (src/errors.ts): the errno qemu's block layer would answer for each of our
 * errors, and the text qemu-io prints for it; and `qcow2 io`'s runner reporting a full disk as
 * qemu-io 7.2 does (`write failed: No space left on device`, seen on a full tmpfs), not as EIO.
 */
import { describe, expect, it } from 'vitest';
import { parseScript } from '../../src/cli/io/parse.js';
import { runOps } from '../../src/cli/io/run.js';
import { RawDevice } from '../../src/engine/raw.js';
import { corrupt, type Errno, errnoOf, errnoText, ioError, readOnlyError, truncated, unsupported, usage } from '../../src/errors.js';
import { FaultFile } from '../../src/io/fault-file.js';
import { MemoryFile } from '../../src/io/memory-file.js';
import { NodeFile } from '../../src/io/node-file.js';

const sysErr = (code: string) => Object.assign(new Error(code), { code });

describe('errnoOf', () => {
  it.each<[string, unknown, Errno]>([
    ['io with ENOSPC', ioError('write failed', { cause: sysErr('ENOSPC') }), 'ENOSPC'],
    ['io with EIO', ioError('write failed', { cause: sysErr('EIO') }), 'EIO'],
    ['io with EDQUOT', ioError('write failed', { cause: sysErr('EDQUOT') }), 'EDQUOT'],
    ['io with EFBIG', ioError('write failed', { cause: sysErr('EFBIG') }), 'EFBIG'],
    ['io with EROFS', ioError('write failed', { cause: sysErr('EROFS') }), 'EROFS'],
    ['io with EACCES', ioError('open failed', { cause: sysErr('EACCES') }), 'EACCES'],
    ['io with EOPNOTSUPP', ioError('fallocate failed', { cause: sysErr('EOPNOTSUPP') }), 'ENOTSUP'],
    ['io with an errno we do not report', ioError('failed', { cause: sysErr('EXDEV') }), 'EIO'],
    ['io without a cause', ioError('failed'), 'EIO'],
    ['io over an io error over ENOSPC', ioError('request failed', { cause: ioError('write failed', { cause: sysErr('ENOSPC') }) }), 'ENOSPC'],
    ['io over a corrupt error', ioError('request failed', { cause: corrupt('bad L2 entry') }), 'EIO'],
    ['usage', usage('bad argument'), 'EINVAL'],
    ['read-only', readOnlyError('the image is open read-only'), 'EPERM'],
    ['unsupported', unsupported('no such feature'), 'ENOTSUP'],
    ['corrupt', corrupt('bad L2 entry'), 'EIO'],
    ['truncated', truncated('short table'), 'EIO'],
    ['an explicit errno', usage('request too large', { errno: 'EOVERFLOW' }), 'EOVERFLOW'],
    ['a bare Node error', sysErr('ENOSPC'), 'ENOSPC'],
    ['anything else', new TypeError('bug'), 'EIO'],
    ['not an error', 'oops', 'EIO'],
  ])('%s', (_name, err, errno) => {
    expect(errnoOf(err)).toBe(errno);
  });

  it('reads a real ENOSPC (/dev/full) through NodeFile', async () => {
    const file = await NodeFile.open('/dev/full').catch(() => null);
    if (!file) return;
    try {
      const err = await file.write(0, new Uint8Array(512)).catch((e: unknown) => e);
      expect(errnoOf(err)).toBe('ENOSPC');
    } finally {
      await file.close();
    }
  });
});

describe('errnoText', () => {
  it.each<[Errno, string]>([
    ['EIO', 'Input/output error'],
    ['ENOSPC', 'No space left on device'],
    ['EDQUOT', 'Disk quota exceeded'],
    ['EFBIG', 'File too large'],
    ['EINVAL', 'Invalid argument'],
    ['EPERM', 'Operation not permitted'],
    ['EACCES', 'Permission denied'],
    ['EROFS', 'Read-only file system'],
    ['EOVERFLOW', 'Value too large for defined data type'],
    ['ENOTSUP', 'Operation not supported'],
    ['ENOMEM', 'Cannot allocate memory'],
    ['ENOENT', 'No such file or directory'],
    ['EBADF', 'Bad file descriptor'],
    ['ESHUTDOWN', 'Cannot send after transport endpoint shutdown'],
  ])('%s: %s', (errno, text) => {
    expect(errnoText(errno)).toBe(text);
  });
});

describe('qcow2 io on a full disk', () => {
  async function run(file: FaultFile, commands: string[]) {
    const device = await RawDevice.over(file);
    let stdout = '';
    let stderr = '';
    const out = { stdout: (s: string) => (stdout += s), stderr: (s: string) => (stderr += s) };
    const result = await runOps(device, parseScript(commands), out, { now: () => 0n });
    return { ...result, stdout, stderr };
  }

  it('reports ENOSPC as qemu-io does: `write failed: No space left on device`', async () => {
    const file = new FaultFile(new MemoryFile(new Uint8Array(64 * 1024)), { on: 'data', nth: 1, code: 'ENOSPC', sticky: true });
    const r = await run(file, ['write -q 0 4k', 'write -q -z 0 4k', 'discard -q 0 4k']);
    expect(r.failures).toBe(3);
    expect(r.stdout).toBe(['write failed: No space left on device', 'write failed: No space left on device', 'discard failed: No space left on device', ''].join('\n'));
    expect(r.stderr).toMatch(/ENOSPC \(injected\)/);
  });

  it('and EIO as Input/output error', async () => {
    const file = new FaultFile(new MemoryFile(new Uint8Array(64 * 1024)), { on: 'write', nth: 1, code: 'EIO' });
    const r = await run(file, ['write -q 0 4k', 'write -q 0 4k']);
    expect(r.failures).toBe(1);
    expect(r.stdout).toBe('write failed: Input/output error\n');
  });
});
