/**
 * The Linux ublk ABI (include/uapi/linux/ublk_cmd.h as of 6.12), written out in TypeScript: the
 * control opcodes (ioctl-encoded), feature flags, device states, request ops and flags, and
 * codecs for the structures the control commands carry (ublksrv_ctrl_dev_info, ublk_params).
 * Pure: no I/O. test/unit/ublk-uapi.test.ts checks every size, offset and opcode here against
 * values derived by hand from the kernel header.
 */

/** _IOC(dir, type, nr, size) of asm-generic/ioctl.h: dir << 30 | size << 16 | type << 8 | nr. */
export function ioc(dir: 'r' | 'rw', type: string, nr: number, size: number): number {
  const d = dir === 'r' ? 2 : 3;
  return ((d << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
}

/** struct ublksrv_ctrl_cmd: the control command in the SQE128 command area. */
export const CTRL_CMD_BYTES = 32;
/** struct ublksrv_io_cmd: the per-request command. */
export const IO_CMD_BYTES = 16;
/** struct ublksrv_io_desc: one request, in the descriptor mmap of /dev/ublkcN. */
export const IO_DESC_BYTES = 24;
/** struct ublksrv_ctrl_dev_info. */
export const DEV_INFO_BYTES = 64;
/** struct ublk_params with every kind this ABI knows (basic, discard, devt, zoned). */
export const PARAMS_BYTES = 112;

/** The control commands (UBLK_U_CMD_*), ioctl-encoded: the raw opcodes need a legacy kernel option. */
export const CMD = {
  GET_QUEUE_AFFINITY: ioc('r', 'u', 0x01, CTRL_CMD_BYTES),
  GET_DEV_INFO: ioc('r', 'u', 0x02, CTRL_CMD_BYTES),
  ADD_DEV: ioc('rw', 'u', 0x04, CTRL_CMD_BYTES),
  DEL_DEV: ioc('rw', 'u', 0x05, CTRL_CMD_BYTES),
  START_DEV: ioc('rw', 'u', 0x06, CTRL_CMD_BYTES),
  STOP_DEV: ioc('rw', 'u', 0x07, CTRL_CMD_BYTES),
  SET_PARAMS: ioc('rw', 'u', 0x08, CTRL_CMD_BYTES),
  GET_PARAMS: ioc('r', 'u', 0x09, CTRL_CMD_BYTES),
  START_USER_RECOVERY: ioc('rw', 'u', 0x10, CTRL_CMD_BYTES),
  END_USER_RECOVERY: ioc('rw', 'u', 0x11, CTRL_CMD_BYTES),
  GET_DEV_INFO2: ioc('r', 'u', 0x12, CTRL_CMD_BYTES),
  GET_FEATURES: ioc('r', 'u', 0x13, CTRL_CMD_BYTES),
  DEL_DEV_ASYNC: ioc('r', 'u', 0x14, CTRL_CMD_BYTES),
} as const;
export type ControlCommand = keyof typeof CMD;

/** The I/O commands (UBLK_U_IO_*); sent by the native queue threads (native/ublk_abi.h). */
export const IO_CMD = {
  FETCH_REQ: ioc('rw', 'u', 0x20, IO_CMD_BYTES),
  COMMIT_AND_FETCH_REQ: ioc('rw', 'u', 0x21, IO_CMD_BYTES),
  NEED_GET_DATA: ioc('rw', 'u', 0x22, IO_CMD_BYTES),
} as const;

/** UBLK_F_*: device flags (ADD_DEV) and features (GET_FEATURES). */
export const F = {
  SUPPORT_ZERO_COPY: 1n << 0n,
  URING_CMD_COMP_IN_TASK: 1n << 1n,
  NEED_GET_DATA: 1n << 2n,
  USER_RECOVERY: 1n << 3n,
  USER_RECOVERY_REISSUE: 1n << 4n,
  UNPRIVILEGED_DEV: 1n << 5n,
  CMD_IOCTL_ENCODE: 1n << 6n,
  USER_COPY: 1n << 7n,
  ZONED: 1n << 8n,
} as const;

/** The names of the set feature bits, for messages and `list`. */
export function featureNames(flags: bigint): string[] {
  return Object.entries(F)
    .filter(([, bit]) => (flags & bit) !== 0n)
    .map(([name]) => name.toLowerCase());
}

/** UBLK_S_DEV_*. */
export const STATE = { DEAD: 0, LIVE: 1, QUIESCED: 2 } as const;
export function stateName(state: number): string {
  return state === STATE.DEAD ? 'dead' : state === STATE.LIVE ? 'live' : state === STATE.QUIESCED ? 'quiesced' : `state ${state}`;
}

/** UBLK_IO_OP_*: bits 0-7 of a descriptor's op_flags. */
export const OP = { READ: 0, WRITE: 1, FLUSH: 2, DISCARD: 3, WRITE_SAME: 4, WRITE_ZEROES: 5 } as const;
/** UBLK_IO_F_*: bits 8-31 of op_flags. */
export const IO_F = { FAILFAST_DEV: 1 << 8, FAILFAST_TRANSPORT: 1 << 9, FAILFAST_DRIVER: 1 << 10, META: 1 << 11, FUA: 1 << 13, NOUNMAP: 1 << 15, SWAP: 1 << 16 } as const;

/** UBLK_ATTR_* of ublk_param_basic.attrs. */
export const ATTR = { READ_ONLY: 1, ROTATIONAL: 2, VOLATILE_CACHE: 4, FUA: 8 } as const;
/** UBLK_PARAM_TYPE_*. */
export const PARAM_TYPE = { BASIC: 1, DISCARD: 2, DEVT: 4, ZONED: 8 } as const;

/** UBLK_MAX_QUEUE_DEPTH; the descriptors of queue q are at q × round_up(4096 × 24, page) of /dev/ublkcN. */
export const MAX_QUEUE_DEPTH = 4096;
/** UBLK_MAX_NR_QUEUES (1 << UBLK_QID_BITS). */
export const MAX_NR_QUEUES = 4096;
/** dev_id / queue_id meaning "pick one" / "not a queue command". */
export const ANY_DEV = 0xffffffff;
export const NO_QUEUE = 0xffff;

/** struct ublksrv_ctrl_dev_info, decoded. */
export interface DevInfo {
  nrHwQueues: number;
  queueDepth: number;
  state: number;
  maxIoBufBytes: number;
  devId: number;
  ublksrvPid: number;
  flags: bigint;
  /** For the server's own use; the driver keeps it (we do not use it). */
  ublksrvFlags: bigint;
  ownerUid: number;
  ownerGid: number;
}

/** Field offsets of struct ublksrv_ctrl_dev_info. */
export const DEV_INFO_OFFSETS = {
  nr_hw_queues: 0,
  queue_depth: 2,
  state: 4,
  max_io_buf_bytes: 8,
  dev_id: 12,
  ublksrv_pid: 16,
  flags: 24,
  ublksrv_flags: 32,
  owner_uid: 40,
  owner_gid: 44,
} as const;

export function encodeDevInfo(info: Partial<DevInfo> & Pick<DevInfo, 'nrHwQueues' | 'queueDepth' | 'maxIoBufBytes' | 'devId' | 'flags'>): Uint8Array {
  const bytes = new Uint8Array(DEV_INFO_BYTES);
  const v = new DataView(bytes.buffer);
  const o = DEV_INFO_OFFSETS;
  v.setUint16(o.nr_hw_queues, info.nrHwQueues, true);
  v.setUint16(o.queue_depth, info.queueDepth, true);
  v.setUint16(o.state, info.state ?? 0, true);
  v.setUint32(o.max_io_buf_bytes, info.maxIoBufBytes, true);
  v.setUint32(o.dev_id, info.devId, true);
  v.setInt32(o.ublksrv_pid, info.ublksrvPid ?? 0, true);
  v.setBigUint64(o.flags, info.flags, true);
  v.setBigUint64(o.ublksrv_flags, info.ublksrvFlags ?? 0n, true);
  return bytes;
}

export function decodeDevInfo(bytes: Uint8Array): DevInfo {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = DEV_INFO_OFFSETS;
  return {
    nrHwQueues: v.getUint16(o.nr_hw_queues, true),
    queueDepth: v.getUint16(o.queue_depth, true),
    state: v.getUint16(o.state, true),
    maxIoBufBytes: v.getUint32(o.max_io_buf_bytes, true),
    devId: v.getUint32(o.dev_id, true),
    ublksrvPid: v.getInt32(o.ublksrv_pid, true),
    flags: v.getBigUint64(o.flags, true),
    ublksrvFlags: v.getBigUint64(o.ublksrv_flags, true),
    ownerUid: v.getUint32(o.owner_uid, true),
    ownerGid: v.getUint32(o.owner_gid, true),
  };
}

/** struct ublk_param_basic. */
export interface BasicParams {
  attrs: number;
  logicalBsShift: number;
  physicalBsShift: number;
  ioOptShift: number;
  ioMinShift: number;
  maxSectors: number;
  chunkSectors: number;
  devSectors: bigint;
  virtBoundaryMask: bigint;
}

/** struct ublk_param_discard. */
export interface DiscardParams {
  discardAlignment: number;
  discardGranularity: number;
  maxDiscardSectors: number;
  maxWriteZeroesSectors: number;
  maxDiscardSegments: number;
}

/** struct ublk_param_devt (read back with GET_PARAMS; never set). */
export interface DevtParams {
  charMajor: number;
  charMinor: number;
  diskMajor: number;
  diskMinor: number;
}

export interface Params {
  basic?: BasicParams;
  discard?: DiscardParams;
  devt?: DevtParams;
}

/** Where each part of struct ublk_params starts. */
export const PARAMS_OFFSETS = { len: 0, types: 4, basic: 8, discard: 40, devt: 60, zoned: 76 } as const;

export function encodeParams(p: Params): Uint8Array {
  const bytes = new Uint8Array(PARAMS_BYTES);
  const v = new DataView(bytes.buffer);
  let types = 0;
  v.setUint32(PARAMS_OFFSETS.len, PARAMS_BYTES, true);
  if (p.basic) {
    types |= PARAM_TYPE.BASIC;
    const b = PARAMS_OFFSETS.basic;
    v.setUint32(b, p.basic.attrs, true);
    v.setUint8(b + 4, p.basic.logicalBsShift);
    v.setUint8(b + 5, p.basic.physicalBsShift);
    v.setUint8(b + 6, p.basic.ioOptShift);
    v.setUint8(b + 7, p.basic.ioMinShift);
    v.setUint32(b + 8, p.basic.maxSectors, true);
    v.setUint32(b + 12, p.basic.chunkSectors, true);
    v.setBigUint64(b + 16, p.basic.devSectors, true);
    v.setBigUint64(b + 24, p.basic.virtBoundaryMask, true);
  }
  if (p.discard) {
    types |= PARAM_TYPE.DISCARD;
    const d = PARAMS_OFFSETS.discard;
    v.setUint32(d, p.discard.discardAlignment, true);
    v.setUint32(d + 4, p.discard.discardGranularity, true);
    v.setUint32(d + 8, p.discard.maxDiscardSectors, true);
    v.setUint32(d + 12, p.discard.maxWriteZeroesSectors, true);
    v.setUint16(d + 16, p.discard.maxDiscardSegments, true);
  }
  if (p.devt) {
    types |= PARAM_TYPE.DEVT;
    const d = PARAMS_OFFSETS.devt;
    v.setUint32(d, p.devt.charMajor, true);
    v.setUint32(d + 4, p.devt.charMinor, true);
    v.setUint32(d + 8, p.devt.diskMajor, true);
    v.setUint32(d + 12, p.devt.diskMinor, true);
  }
  v.setUint32(PARAMS_OFFSETS.types, types, true);
  return bytes;
}

export function decodeParams(bytes: Uint8Array): Params {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const types = v.getUint32(PARAMS_OFFSETS.types, true);
  const out: Params = {};
  if (types & PARAM_TYPE.BASIC) {
    const b = PARAMS_OFFSETS.basic;
    out.basic = {
      attrs: v.getUint32(b, true),
      logicalBsShift: v.getUint8(b + 4),
      physicalBsShift: v.getUint8(b + 5),
      ioOptShift: v.getUint8(b + 6),
      ioMinShift: v.getUint8(b + 7),
      maxSectors: v.getUint32(b + 8, true),
      chunkSectors: v.getUint32(b + 12, true),
      devSectors: v.getBigUint64(b + 16, true),
      virtBoundaryMask: v.getBigUint64(b + 24, true),
    };
  }
  if (types & PARAM_TYPE.DISCARD) {
    const d = PARAMS_OFFSETS.discard;
    out.discard = {
      discardAlignment: v.getUint32(d, true),
      discardGranularity: v.getUint32(d + 4, true),
      maxDiscardSectors: v.getUint32(d + 8, true),
      maxWriteZeroesSectors: v.getUint32(d + 12, true),
      maxDiscardSegments: v.getUint16(d + 16, true),
    };
  }
  if (types & PARAM_TYPE.DEVT) {
    const d = PARAMS_OFFSETS.devt;
    out.devt = { charMajor: v.getUint32(d, true), charMinor: v.getUint32(d + 4, true), diskMajor: v.getUint32(d + 8, true), diskMinor: v.getUint32(d + 12, true) };
  }
  return out;
}

/** One request of a batch from the native queue thread (24-byte entries, see native/ublk_queue.c). */
export const BATCH_ENTRY_BYTES = 24;
