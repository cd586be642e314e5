/*
 * A minimal io_uring of our own (no liburing on the build hosts): io_uring_setup(2), the SQ/CQ rings
 * and the SQE array mmapped, io_uring_enter(2) to submit and wait. One ring is used by one thread
 * only (the ublk queue threads, the control command's worker), so there is no locking here; the
 * memory ordering with the kernel is the documented one (acquire the tails it writes, release the
 * ones we write).
 */
#ifndef QCOW2_UBLK_URING_H
#define QCOW2_UBLK_URING_H
#include <linux/io_uring.h>
#include <stddef.h>
#include <stdint.h>

struct ublk_uring {
  int fd;
  unsigned flags;        /* the setup flags the kernel took */
  unsigned sq_entries;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;
  unsigned char *sqes;
  size_t sqe_size;       /* 64, or 128 with IORING_SETUP_SQE128 */
  void *sq_ptr, *cq_ptr;
  size_t sq_len, cq_len, sqes_len;
  unsigned sq_local_tail; /* SQEs prepared, not yet published */
  unsigned sq_published;  /* published to the kernel, not yet taken by io_uring_enter */
};

/*
 * Sets up a ring of `entries` SQEs with `flags` (IORING_SETUP_*); when `fallback_flags` differs it is
 * tried after an EINVAL (an older kernel without SINGLE_ISSUER / DEFER_TASKRUN). 0 or -errno.
 */
int ublk_uring_init(struct ublk_uring *r, unsigned entries, unsigned flags, unsigned fallback_flags);
void ublk_uring_exit(struct ublk_uring *r);
/* A zeroed SQE (sqe_size bytes) to fill, or NULL when the submission queue is full. */
struct io_uring_sqe *ublk_uring_get_sqe(struct ublk_uring *r);
/*
 * Submits what was prepared and waits for at least `wait_nr` completions (0: does not wait),
 * at most `timeout_ms` (negative: no limit). Returns >= 0, or -errno (-ETIME on a timeout).
 * EINTR is retried.
 */
int ublk_uring_submit_and_wait(struct ublk_uring *r, unsigned wait_nr, int timeout_ms);
/* The next completion, or NULL; ublk_uring_cqe_seen() hands it back. */
struct io_uring_cqe *ublk_uring_peek_cqe(struct ublk_uring *r);
void ublk_uring_cqe_seen(struct ublk_uring *r);

#endif
