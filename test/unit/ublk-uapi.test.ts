/**
 * The ublk ABI as src/ublk/uapi.ts writes it, against values derived by hand from the 6.12 kernel
 * header (include/uapi/linux/ublk_cmd.h): opcodes, structure sizes and offsets, flag bits; and the
 * addon's behaviour on a kernel without ublk (a typed error, not a crash).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isQcow2Error } from '../../src/errors.js';
import { getFeatures } from '../../src/ublk/control.js';
import { loadUblkAddon } from '../../src/ublk/native.js';
import {
  ATTR,
  CMD,
  CTRL_CMD_BYTES,
  decodeDevInfo,
  decodeParams,
  DEV_INFO_BYTES,
  DEV_INFO_OFFSETS,
  encodeDevInfo,
  encodeParams,
  F,
  IO_CMD,
  IO_CMD_BYTES,
  IO_DESC_BYTES,
  IO_F,
  OP,
  PARAM_TYPE,
  PARAMS_BYTES,
  PARAMS_OFFSETS,
  STATE,
} from '../../src/ublk/uapi.js';

describe('ublk ABI', () => {
  it('control opcodes are the ioctl-encoded ones (_IOR/_IOWR of a 32-byte command, type u)', () => {
    // _IOR = 2 << 30, _IOWR = 3 << 30; size 32 = 0x20 << 16; 'u' = 0x75 << 8.
    expect(CMD).toEqual({
      GET_QUEUE_AFFINITY: 0x80207501,
      GET_DEV_INFO: 0x80207502,
      ADD_DEV: 0xc0207504,
      DEL_DEV: 0xc0207505,
      START_DEV: 0xc0207506,
      STOP_DEV: 0xc0207507,
      SET_PARAMS: 0xc0207508,
      GET_PARAMS: 0x80207509,
      START_USER_RECOVERY: 0xc0207510,
      END_USER_RECOVERY: 0xc0207511,
      GET_DEV_INFO2: 0x80207512,
      GET_FEATURES: 0x80207513,
      DEL_DEV_ASYNC: 0x80207514,
    });
    expect(IO_CMD).toEqual({ FETCH_REQ: 0xc0107520, COMMIT_AND_FETCH_REQ: 0xc0107521, NEED_GET_DATA: 0xc0107522 });
  });

  it('structure sizes', () => {
    // ublksrv_ctrl_cmd: u32 dev_id, u16 queue_id, u16 len, u64 addr, u64 data[1], u16, u16, u32 = 32
    expect(CTRL_CMD_BYTES).toBe(4 + 2 + 2 + 8 + 8 + 2 + 2 + 4);
    // ublksrv_io_cmd: u16 q_id, u16 tag, s32 result, u64 addr = 16
    expect(IO_CMD_BYTES).toBe(16);
    // ublksrv_io_desc: u32 op_flags, u32 nr_sectors, u64 start_sector, u64 addr = 24
    expect(IO_DESC_BYTES).toBe(24);
    // ublksrv_ctrl_dev_info: 4 × u16, u32 max_io_buf_bytes, u32 dev_id, s32 pid, u32 pad1, u64 flags,
    // u64 ublksrv_flags, u32 uid, u32 gid, 2 × u64 reserved = 64
    expect(DEV_INFO_BYTES).toBe(8 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 16);
    // ublk_params: u32 len, u32 types, basic 32, discard 20, devt 16, zoned 32 = 108, padded to 8 (u64 in basic) = 112
    expect(PARAMS_BYTES).toBe(112);
    expect(PARAMS_OFFSETS).toEqual({ len: 0, types: 4, basic: 8, discard: 8 + 32, devt: 40 + 20, zoned: 60 + 16 });
    expect(DEV_INFO_OFFSETS).toEqual({
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
    });
  });

  it('flags, states, ops', () => {
    // The 6.12 driver's GET_FEATURES answer, 0x1fe: every feature but zero copy.
    const f612 = F.URING_CMD_COMP_IN_TASK | F.NEED_GET_DATA | F.USER_RECOVERY | F.USER_RECOVERY_REISSUE | F.UNPRIVILEGED_DEV | F.CMD_IOCTL_ENCODE | F.USER_COPY | F.ZONED;
    expect(f612).toBe(0x1fen);
    expect(STATE).toEqual({ DEAD: 0, LIVE: 1, QUIESCED: 2 });
    expect(OP).toMatchObject({ READ: 0, WRITE: 1, FLUSH: 2, DISCARD: 3, WRITE_ZEROES: 5 });
    expect(IO_F.FUA).toBe(0x2000);
    expect(IO_F.NOUNMAP).toBe(0x8000);
    expect(ATTR).toEqual({ READ_ONLY: 1, ROTATIONAL: 2, VOLATILE_CACHE: 4, FUA: 8 });
    expect(PARAM_TYPE).toEqual({ BASIC: 1, DISCARD: 2, DEVT: 4, ZONED: 8 });
  });

  it('device info encodes at the header offsets and decodes back', () => {
    const bytes = encodeDevInfo({ nrHwQueues: 2, queueDepth: 128, maxIoBufBytes: 512 * 1024, devId: 0xffffffff, flags: F.CMD_IOCTL_ENCODE | F.USER_RECOVERY });
    expect(bytes.byteLength).toBe(64);
    const v = new DataView(bytes.buffer);
    expect(v.getUint16(0, true)).toBe(2);
    expect(v.getUint16(2, true)).toBe(128);
    expect(v.getUint32(8, true)).toBe(524288);
    expect(v.getUint32(12, true)).toBe(0xffffffff);
    expect(v.getBigUint64(24, true)).toBe(0x48n);
    v.setUint16(4, 1, true);
    v.setInt32(16, 4242, true);
    expect(decodeDevInfo(bytes)).toMatchObject({ nrHwQueues: 2, queueDepth: 128, state: 1, ublksrvPid: 4242, devId: 0xffffffff, flags: 0x48n });
  });

  it('parameters encode at the header offsets and decode back', () => {
    const params = {
      basic: {
        attrs: ATTR.VOLATILE_CACHE | ATTR.FUA,
        logicalBsShift: 9,
        physicalBsShift: 12,
        ioOptShift: 16,
        ioMinShift: 12,
        maxSectors: 1024,
        chunkSectors: 0,
        devSectors: 2097152n,
        virtBoundaryMask: 0n,
      },
      discard: { discardAlignment: 0, discardGranularity: 65536, maxDiscardSectors: 2097152, maxWriteZeroesSectors: 2097152, maxDiscardSegments: 1 },
    };
    const bytes = encodeParams(params);
    const v = new DataView(bytes.buffer);
    expect(v.getUint32(0, true)).toBe(112);
    expect(v.getUint32(4, true)).toBe(PARAM_TYPE.BASIC | PARAM_TYPE.DISCARD);
    expect(v.getUint32(8, true)).toBe(12);
    expect([v.getUint8(12), v.getUint8(13), v.getUint8(14), v.getUint8(15)]).toEqual([9, 12, 16, 12]);
    expect(v.getUint32(16, true)).toBe(1024);
    expect(v.getBigUint64(24, true)).toBe(2097152n);
    expect(v.getUint32(44, true)).toBe(65536);
    expect(v.getUint16(56, true)).toBe(1);
    expect(decodeParams(bytes)).toEqual(params);
  });
});

describe('ublk addon', () => {
  it('is built', () => {
    expect(loadUblkAddon()).not.toBeNull();
  });

  it.skipIf(existsSync('/dev/ublk-control'))('without ublk in the kernel: GET_FEATURES is a typed error, not a crash', async () => {
    const addon = loadUblkAddon();
    if (addon === null) throw new Error('addon not built');
    await expect(addon.control(CMD.GET_FEATURES, 0xffffffff, 0xffff, new Uint8Array(8), 0, 1000, 'GET_FEATURES')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    const err = await getFeatures().catch((e: unknown) => e);
    expect(isQcow2Error(err)).toBe(true);
    expect(err).toMatchObject({ code: 'unsupported' });
    expect((err as Error).message).toMatch(/no ublk driver/);
  });

  it.runIf(existsSync('/dev/ublk-control'))('with ublk: GET_FEATURES answers the ioctl encoding among its features', async () => {
    const features = await getFeatures();
    expect(features & F.CMD_IOCTL_ENCODE).toBe(F.CMD_IOCTL_ENCODE);
  });

  it('queue calls refuse bad arguments with a TypeError', () => {
    const addon = loadUblkAddon();
    if (addon === null) throw new Error('addon not built');
    expect(() => addon.openQueues(0, 0, 1, 4096, () => {})).toThrow(TypeError);
    expect(() => addon.complete({} as never, 0, 0, 0)).toThrow();
  });
});
