/**
 * Runs a shell command inside a throwaway QEMU virtual machine: Debian 12's Linux 6.12 kernel
 * (it has ublk_drv, nbd and loop as modules, which the host's kernel may lack) over the host's own
 * userland. The guest sees the host's / read-only over 9p under a tmpfs overlay (it may write
 * anywhere; nothing reaches the host) and the `writable` host directories read-write at their own
 * paths, so node, fio, mkfs.ext4, qemu-img and this checkout run inside as they do outside.
 *
 * `bash test/vm/setup.sh` (run by scripts/setup.sh) prepares the kernel and the initramfs base in a
 * cache directory ($QCOW2_VM_DIR, default /var/cache/qcow2-vm); nothing here downloads anything.
 * Each boot appends test/vm/init (stage 1, busybox), test/vm/guest-run (stage 2, host userland) and
 * the command to the cached initramfs. Serial ports: ttyS0 = console, ttyS1 = the exit status; the
 * command's output goes to a virtio-serial port (fast; a UART under TCG manages ~200 KB/s).
 * QEMU runs with TCG and one host thread for all vCPUs (`-accel tcg,thread=single`):
 * multi-threaded TCG crashed the guest at boot now and then.
 *
 * Inside, the command runs as root under /bin/bash -c with stdin /dev/null and stdout/stderr on a
 * pipe (not a tty). /tmp is part of the overlay: the host's files show, writes stay in guest RAM
 * (the overlay's tmpfs holds up to half of memMiB). Network: loopback only. No udev: devtmpfs
 * makes /dev/ublk-control, /dev/ublkbN, /dev/nbdN. `modprobe` is the host's kmod, reading the
 * guest kernel's modules bind-mounted at /lib/modules/$(uname -r).
 * QCOW2_VM_VERBOSE=1 copies the guest console to stderr as it comes.
 *
 * Measured on a 2-core host without KVM: the command starts about 5 s (up to 8 s on a busy host)
 * after QEMU does; `true` takes about 6 s in all.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newcArchive } from '../vm/cpio.js';

export interface VmOptions {
  /** Working directory of the command inside the guest; default process.cwd(). Must exist on the host. */
  cwd?: string;
  /** Host directories the guest may write to, mounted read-write at the same paths (at most 8). */
  writable?: string[];
  /** Whole run, boot (and a retried boot) included; default 300 000 ms. */
  timeoutMs?: number;
  /** Guest RAM; default 2048 MiB. The guest's writes outside `writable` live in it. */
  memMiB?: number;
  /** Guest vCPUs; default 2. */
  cpus?: number;
  /**
   * Variables added to (or replacing those of) the command's base environment: PATH (the host's
   * PATH plus the sbin directories), HOME=/root, TERM=dumb, LANG=C.UTF-8. Nothing else is
   * inherited from the host.
   */
  env?: Record<string, string>;
}

export interface VmResult {
  /** The command's exit status (0..255; 128+N when killed by signal N). */
  status: number;
  /** What the command wrote to stdout and stderr, interleaved (kernel messages are in `console`). */
  output: string;
  /** The guest's console: kernel messages and the init scripts' lines. */
  console: string;
  /** From starting QEMU to the command starting, as seen by the host. */
  bootMs: number;
  /** From starting QEMU to QEMU's exit. */
  totalMs: number;
  /** 2 when the first boot died before reporting and was retried. */
  attempts: number;
}

export type VmFailure =
  | 'unavailable' // no qemu-system-x86_64, or no cache: run `bash test/vm/setup.sh`
  | 'usage' // bad options (a cwd or writable directory that does not exist, ...); nothing booted
  | 'qemu' // QEMU refused to start
  | 'boot' // test/vm/init reported a set-up failure (a 9p mount, a module)
  | 'died' // the guest stopped without reporting a status (kernel panic or oops), twice
  | 'timeout'; // timeoutMs passed; QEMU was killed

/** A run that produced no exit status. `console` and `output` hold what the guest printed. */
export class VmError extends Error {
  constructor(
    readonly kind: VmFailure,
    message: string,
    readonly console = '',
    readonly output = '',
  ) {
    super(console || output ? `${message}\n--- guest console ---\n${console}\n--- command output ---\n${output}` : message);
    this.name = 'VmError';
  }
}

const QEMU = 'qemu-system-x86_64';
const SETUP_HINT = 'run `bash test/vm/setup.sh` (scripts/setup.sh does)';
const VM_SRC = fileURLToPath(new URL('../vm/', import.meta.url));
const MAX_WRITABLE = 8;
const READY = 'vm: ready at ';

interface VmCache {
  kernelVersion: string;
  vmlinux: string;
  initrdBase: string;
  modules: string;
}

function cacheDir(): string {
  return process.env.QCOW2_VM_DIR || '/var/cache/qcow2-vm';
}

/** The cache's env file (KEY=value lines written by setup.sh), or why it cannot be used. */
function readCache(): VmCache | string {
  const envFile = join(cacheDir(), 'env');
  if (!existsSync(envFile)) return `no VM cache at ${cacheDir()}: ${SETUP_HINT}`;
  const env = new Map<string, string>();
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const cache = {
    kernelVersion: env.get('QCOW2_VM_KERNEL_VERSION') ?? '',
    vmlinux: env.get('QCOW2_VM_VMLINUX') ?? '',
    initrdBase: env.get('QCOW2_VM_INITRD_BASE') ?? '',
    modules: env.get('QCOW2_VM_MODULES') ?? '',
  };
  for (const [key, file] of Object.entries(cache)) {
    if (!file || (key !== 'kernelVersion' && !existsSync(file))) {
      return `VM cache ${cacheDir()} is incomplete (${key} ${file || 'unset'}): ${SETUP_HINT}`;
    }
  }
  return cache;
}

function findOnPath(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Whether runInVm can work here (QEMU installed, cache prepared); cheap, synchronous. */
export function vmAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { ok: false, reason: 'the VM needs an x86-64 Linux host' };
  if (!findOnPath(QEMU)) return { ok: false, reason: `${QEMU} is not installed: ${SETUP_HINT}` };
  const cache = readCache();
  return typeof cache === 'string' ? { ok: false, reason: cache } : { ok: true };
}

/** The kernel version the guest boots (from the cache), or undefined without a cache. */
export function vmKernelVersion(): string | undefined {
  const cache = readCache();
  return typeof cache === 'string' ? undefined : cache.kernelVersion;
}

/** Single-quotes a string for the shell. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A host directory as the guest will name it (symlinks resolved), checked to exist. */
function hostDir(dir: string, what: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new VmError('usage', `${what} ${dir} does not exist on the host`);
  }
  if (!statSync(real).isDirectory()) throw new VmError('usage', `${what} ${dir} is not a directory`);
  if (/[\n\0]/.test(real)) throw new VmError('usage', `${what} ${JSON.stringify(dir)}: no newlines in paths`);
  return real;
}

/** The script stage 2 runs: the environment, the working directory, then the command. */
function commandScript(cmd: string, cwd: string, env: Record<string, string>): string {
  const sbin = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
  const hostPath = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  const vars: Record<string, string> = {
    PATH: [...hostPath, ...sbin.filter((d) => !hostPath.includes(d))].join(':'),
    HOME: '/root',
    TERM: 'dumb',
    LANG: 'C.UTF-8',
    ...env,
  };
  const lines = Object.entries(vars).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new VmError('usage', `bad environment variable name ${JSON.stringify(k)}`);
    return `export ${k}=${shq(v)}`;
  });
  lines.push(`cd -- ${shq(cwd)} || exit 126`, `exec /bin/bash -c ${shq(cmd)}`);
  return lines.join('\n') + '\n';
}

/** The initrd for one boot: the cached base, then an archive with the init scripts and the command. */
function buildInitrd(cache: VmCache, script: string, writable: string[]): Buffer {
  const base = readFileSync(cache.initrdBase);
  const extra = newcArchive([
    { name: 'init', data: readFileSync(join(VM_SRC, 'init')), mode: 0o755 },
    { name: 'vm' },
    { name: 'vm/guest-run', data: readFileSync(join(VM_SRC, 'guest-run')), mode: 0o755 },
    { name: 'vm/command.sh', data: script },
    { name: 'vm/modules', data: cache.modules },
    { name: 'vm/rw', data: writable.map((d) => `${d}\n`).join('') },
  ]);
  // Archives start at 4-byte boundaries; the kernel skips the zeros between them.
  return Buffer.concat([base, Buffer.alloc((4 - (base.length % 4)) % 4), extra]);
}

/** QEMU's option syntax: a comma inside a value is written twice. */
function qemuValue(s: string): string {
  return s.replace(/,/g, ',,');
}

interface BootPlan {
  cache: VmCache;
  initrd: Buffer;
  writable: string[];
  timeoutMs: number;
  /** Date.now() by which QEMU must be gone, the retry included. */
  deadline: number;
  memMiB: number;
  cpus: number;
}

/** timeout(1)+QEMU processes still running, stopped if this process exits first (SIGTERM to timeout(1) reaches QEMU). */
const running = new Set<ReturnType<typeof spawn>>();
let exitHook = false;

/** One boot: resolves with the result, or rejects with a VmError. */
async function bootOnce(plan: BootPlan, attempt: number): Promise<VmResult> {
  const dir = mkdtempSync(join(tmpdir(), 'qcow2-vm-'));
  try {
    const initrd = join(dir, 'initrd');
    const outFile = join(dir, 'output');
    const statusFile = join(dir, 'status');
    writeFileSync(initrd, plan.initrd);
    const args = [
      ...['-accel', 'tcg,thread=single', '-cpu', 'max', '-M', 'pc'],
      ...['-m', String(plan.memMiB), '-smp', String(plan.cpus)],
      ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
      ...['-serial', 'stdio', '-serial', `file:${statusFile}`],
      ...['-device', 'virtio-serial-pci,id=vser', '-chardev', `file,id=output,path=${qemuValue(outFile)}`],
      ...['-device', 'virtserialport,bus=vser.0,chardev=output,name=qcow2-vm.output'],
      ...['-device', 'isa-debug-exit,iobase=0xf4,iosize=0x01'],
      ...['-kernel', plan.cache.vmlinux, '-initrd', initrd],
      ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
      ...plan.writable.flatMap((d, i) => [
        '-virtfs',
        `local,path=${qemuValue(d)},mount_tag=rw${i},security_model=none,multidevs=remap`,
      ]),
      // panic=-1 with -no-reboot: a panic (oops=panic: an oops too) ends QEMU at once.
      ...['-append', 'console=ttyS0 quiet panic=-1 oops=panic'],
    ];
    const started = Date.now();
    // timeout(1) bounds QEMU even if this process dies without killing it (a test runner's
    // worker being terminated); it relays SIGTERM to QEMU and follows up with SIGKILL.
    const seconds = Math.max(0.1, (plan.deadline - started) / 1000).toFixed(1);
    const child = spawn('timeout', ['--kill-after=5', seconds, QEMU, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => running.forEach((c) => c.kill('SIGTERM')));
    }
    let consoleText = '';
    let stderr = '';
    let bootMs = -1;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      consoleText += chunk;
      if (bootMs < 0 && consoleText.includes(READY)) bootMs = Date.now() - started;
      if (process.env.QCOW2_VM_VERBOSE) process.stderr.write(chunk);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, error }));
      child.once('close', (code) => resolve({ code }));
    });
    running.delete(child);
    // timeout(1) exits 124 when it stopped QEMU with SIGTERM, 137 when it had to kill it. QEMU's own
    // exit statuses are odd (isa-debug-exit) or 0/1, and the guest only ever writes 1 to the port.
    const timedOut = exit.code === 124 || exit.code === 137;
    const totalMs = Date.now() - started;

    const consoleOut = consoleText.replace(/\r/g, '');
    const output = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
    const report = existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : '';
    const status = /^status (\d+)\n/m.exec(report);
    const error = /^error (.*)$/m.exec(report);
    if (status) return { status: Number(status[1]), output, console: consoleOut, bootMs, totalMs, attempts: attempt };
    if (timedOut) throw new VmError('timeout', `VM timed out after ${plan.timeoutMs} ms`, consoleOut, output);
    if (error) throw new VmError('boot', `VM set-up failed: ${error[1]}`, consoleOut, output);
    // 125-127: timeout(1) failed, or could not run QEMU.
    if (exit.error || exit.code === 125 || exit.code === 126 || exit.code === 127 || (consoleOut === '' && stderr !== '')) {
      throw new VmError('qemu', `${QEMU} failed: ${exit.error?.message ?? stderr.trim()}`, consoleOut);
    }
    const why = `VM stopped without reporting a status (QEMU exit ${exit.code}) ${stderr.trim()}`.trim();
    throw new VmError('died', why, consoleOut, output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Boots the VM, runs `cmd` with /bin/bash -c as root in `opts.cwd`, and returns its status and
 * output once the guest is gone. Rejects with a VmError when no status came back. A guest that
 * died before reporting (a rare TCG boot crash, or a kernel oops/panic during the command) is
 * booted once more first, so the command may run twice; `attempts` says so.
 */
export async function runInVm(cmd: string, opts: VmOptions = {}): Promise<VmResult> {
  const available = vmAvailable();
  if (!available.ok) throw new VmError('unavailable', available.reason);
  const cache = readCache() as VmCache;
  const cwd = hostDir(opts.cwd ?? process.cwd(), 'cwd');
  const writable = [...new Set((opts.writable ?? []).map((d) => hostDir(d, 'writable directory')))]
    // Parents before children, so that a child's mount is not hidden by its parent's.
    .sort((a, b) => a.split('/').length - b.split('/').length);
  if (writable.includes('/')) throw new VmError('usage', 'the host\'s / cannot be writable');
  if (writable.length > MAX_WRITABLE) throw new VmError('usage', `at most ${MAX_WRITABLE} writable directories`);
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const plan: BootPlan = {
    cache,
    initrd: buildInitrd(cache, commandScript(cmd, cwd, opts.env ?? {}), writable),
    writable,
    timeoutMs,
    deadline: Date.now() + timeoutMs,
    memMiB: opts.memMiB ?? 2048,
    cpus: opts.cpus ?? 2,
  };
  try {
    return await bootOnce(plan, 1);
  } catch (e) {
    if (!(e instanceof VmError) || e.kind !== 'died') throw e;
    try {
      return await bootOnce(plan, 2);
    } catch (again) {
      if (again instanceof VmError && again.kind === 'died') {
        const consoles = `${e.console}\n--- (retried) second boot's console ---\n${again.console}`;
        throw new VmError('died', `${again.message.split('\n')[0]}, twice`, consoles, again.output);
      }
      throw again;
    }
  }
}
