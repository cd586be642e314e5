/*
 * The parts of the Linux ublk ABI (include/uapi/linux/ublk_cmd.h, 6.12) the native side needs,
 * written out here: the build hosts' own header is older (6.1, without the ioctl-encoded opcodes).
 * The control structures (device info, parameters) are built in TypeScript (src/ublk/uapi.ts); the
 * native side only carries them. Sizes are checked at compile time below.
 */
#ifndef QCOW2_UBLK_ABI_H
#define QCOW2_UBLK_ABI_H
#include <stdint.h>

/* The 32-byte control command, in the SQE128 command area of IORING_OP_URING_CMD. */
struct qublk_ctrl_cmd {
  uint32_t dev_id;
  uint16_t queue_id;
  uint16_t len;
  uint64_t addr;
  uint64_t data0;
  uint16_t dev_path_len;
  uint16_t pad;
  uint32_t reserved;
};

/* The 16-byte I/O command, in the (64-byte) SQE's command area. */
struct qublk_io_cmd {
  uint16_t q_id;
  uint16_t tag;
  int32_t result;
  uint64_t addr;
};

/* One request as the driver describes it (read-only mmap of /dev/ublkcN). */
struct qublk_io_desc {
  uint32_t op_flags; /* op in bits 0-7 */
  uint32_t nr_sectors;
  uint64_t start_sector;
  uint64_t addr;
};

_Static_assert(sizeof(struct qublk_ctrl_cmd) == 32, "ublksrv_ctrl_cmd is 32 bytes");
_Static_assert(sizeof(struct qublk_io_cmd) == 16, "ublksrv_io_cmd is 16 bytes");
_Static_assert(sizeof(struct qublk_io_desc) == 24, "ublksrv_io_desc is 24 bytes");

/* _IOWR('u', 0x20 / 0x21, struct ublksrv_io_cmd) */
#define QUBLK_U_IO_FETCH_REQ 0xc0107520u
#define QUBLK_U_IO_COMMIT_AND_FETCH_REQ 0xc0107521u

#define QUBLK_IO_RES_OK 0
#define QUBLK_MAX_QUEUE_DEPTH 4096
/* Queue q's descriptors are at q * round_up(UBLK_MAX_QUEUE_DEPTH * 24, page) of /dev/ublkcN. */
#define QUBLK_DESC_QUEUE_STRIDE(page) (((QUBLK_MAX_QUEUE_DEPTH * 24) + (page)-1) / (page) * (page))

#endif
