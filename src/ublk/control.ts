/**
 * The ublk control commands (on /dev/ublk-control), typed: each builds its structure with
 * ./uapi.ts and runs through the addon's control() with a time limit (some kernels have had
 * control commands that never complete). A kernel without ublk is one typed error, after one
 * `modprobe ublk_drv`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ioError, type Qcow2Error, unsupported } from '../errors.js';
import { loadUblkAddon, type UblkAddon, ublkAddonError } from './native.js';
import { ANY_DEV, CMD, type ControlCommand, decodeDevInfo, decodeParams, DEV_INFO_BYTES, type DevInfo, encodeDevInfo, encodeParams, NO_QUEUE, PARAMS_BYTES, type Params } from './uapi.js';

export const CONTROL_PATH = '/dev/ublk-control';

/** Most control commands return at once; these wait for the device (I/O in flight, partition scan). */
export const CONTROL_TIMEOUT_MS = 30_000;
export const SLOW_CONTROL_TIMEOUT_MS = 120_000;

let modprobed = false;

function modprobe(): Promise<void> {
  return new Promise((resolve) => {
    execFile('modprobe', ['ublk_drv'], { timeout: 20_000 }, () => resolve());
  });
}

/** The addon, with /dev/ublk-control present (after one `modprobe ublk_drv` if needed); else a typed 'unsupported' error. */
export async function ublkControl(): Promise<UblkAddon> {
  const addon = loadUblkAddon();
  if (addon === null) throw unsupported(`ublk: the native ublk addon is not built (${ublkAddonError()}); run \`node native/build.mjs\``);
  if (!existsSync(CONTROL_PATH) && !modprobed) {
    modprobed = true;
    await modprobe();
  }
  if (!existsSync(CONTROL_PATH)) throw noUblk();
  return addon;
}

function noUblk(): Qcow2Error {
  return unsupported(`ublk: this kernel has no ublk driver (${CONTROL_PATH} is missing, and \`modprobe ublk_drv\` did not make it)`);
}

/** A control command's failure as a typed error, with the errno name the driver answered kept as the cause's code. */
function controlError(name: ControlCommand, devId: number, err: unknown): Qcow2Error {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT' && e.syscall === 'open') return noUblk();
  const dev = devId === ANY_DEV ? '' : ` (device ${devId})`;
  return ioError(`ublk ${name}${dev}: ${e.message ?? String(err)}`, { cause: err });
}

/** The errno name (ENODEV, EBUSY, ...) behind a control error, if there is one. */
export function controlErrno(err: unknown): string | undefined {
  const cause = (err as { cause?: NodeJS.ErrnoException } | null)?.cause;
  return cause?.code;
}

async function run(name: ControlCommand, devId: number, buf: Uint8Array | null, data0 = 0, timeoutMs = CONTROL_TIMEOUT_MS): Promise<number> {
  const addon = await ublkControl();
  try {
    return await addon.control(CMD[name], devId, NO_QUEUE, buf, data0, timeoutMs, name);
  } catch (err) {
    throw controlError(name, devId, err);
  }
}

/** UBLK_F_* the driver supports. */
export async function getFeatures(): Promise<bigint> {
  const buf = new Uint8Array(8);
  await run('GET_FEATURES', ANY_DEV, buf);
  return new DataView(buf.buffer).getBigUint64(0, true);
}

export interface AddDevRequest {
  /** ANY_DEV: the driver picks the id. */
  devId: number;
  nrHwQueues: number;
  queueDepth: number;
  maxIoBufBytes: number;
  flags: bigint;
}

/** ADD_DEV: returns the info the driver copied back (its id, and the flags it negotiated). */
export async function addDev(req: AddDevRequest): Promise<DevInfo> {
  const buf = encodeDevInfo(req);
  await run('ADD_DEV', req.devId, buf);
  return decodeDevInfo(buf);
}

export async function getDevInfo(devId: number): Promise<DevInfo> {
  const buf = new Uint8Array(DEV_INFO_BYTES);
  await run('GET_DEV_INFO', devId, buf);
  return decodeDevInfo(buf);
}

export async function setParams(devId: number, params: Params): Promise<void> {
  await run('SET_PARAMS', devId, encodeParams(params));
}

export async function getParams(devId: number): Promise<Params> {
  const buf = new Uint8Array(PARAMS_BYTES);
  new DataView(buf.buffer).setUint32(0, PARAMS_BYTES, true);
  await run('GET_PARAMS', devId, buf);
  return decodeParams(buf);
}

/** START_DEV: completes once every tag of every queue has a fetch outstanding, and the disk is added. */
export async function startDev(devId: number, pid: number): Promise<void> {
  await run('START_DEV', devId, null, pid, SLOW_CONTROL_TIMEOUT_MS);
}

/** STOP_DEV: removes the disk (waiting for its requests in flight) and aborts the queues' fetches. */
export async function stopDev(devId: number): Promise<void> {
  await run('STOP_DEV', devId, null, 0, SLOW_CONTROL_TIMEOUT_MS);
}

/** DEL_DEV: waits until /dev/ublkcN is closed by its server. */
export async function delDev(devId: number): Promise<void> {
  await run('DEL_DEV', devId, null, 0, SLOW_CONTROL_TIMEOUT_MS);
}

export async function startUserRecovery(devId: number): Promise<void> {
  await run('START_USER_RECOVERY', devId, null, 0, SLOW_CONTROL_TIMEOUT_MS);
}

/** END_USER_RECOVERY: waits for the new server's fetches, and records its pid. */
export async function endUserRecovery(devId: number, pid: number): Promise<void> {
  await run('END_USER_RECOVERY', devId, null, pid, SLOW_CONTROL_TIMEOUT_MS);
}
