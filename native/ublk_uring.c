/* A minimal io_uring: see ublk_uring.h. */
#define _GNU_SOURCE
#include "ublk_uring.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

static int setup_once(struct ublk_uring *r, unsigned entries, unsigned flags) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = flags;
  int fd = sys_setup(entries, &p);
  if (fd < 0) return -errno;
  memset(r, 0, sizeof *r);
  r->fd = fd;
  r->flags = flags;
  r->sq_entries = p.sq_entries;
  r->sqe_size = (flags & IORING_SETUP_SQE128) ? 128 : 64;
  r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) {
    if (r->cq_len > r->sq_len) r->sq_len = r->cq_len;
    r->cq_len = r->sq_len;
  }
  r->sq_ptr = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->sq_ptr == MAP_FAILED) goto fail;
  if (single) {
    r->cq_ptr = r->sq_ptr;
  } else {
    r->cq_ptr = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (r->cq_ptr == MAP_FAILED) {
      r->cq_ptr = NULL;
      goto fail;
    }
  }
  r->sqes_len = p.sq_entries * r->sqe_size;
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) {
    r->sqes = NULL;
    goto fail;
  }
  unsigned char *sq = r->sq_ptr, *cq = r->cq_ptr;
  r->sq_head = (unsigned *)(sq + p.sq_off.head);
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  r->sq_local_tail = r->sq_published = *r->sq_tail;
  return 0;
fail: {
  int err = errno;
  if (r->sq_ptr && r->sq_ptr != MAP_FAILED) munmap(r->sq_ptr, r->sq_len);
  if (r->cq_ptr && r->cq_ptr != r->sq_ptr) munmap(r->cq_ptr, r->cq_len);
  close(fd);
  memset(r, 0, sizeof *r);
  r->fd = -1;
  return -err;
}
}

int ublk_uring_init(struct ublk_uring *r, unsigned entries, unsigned flags, unsigned fallback_flags) {
  int ret = setup_once(r, entries, flags);
  if (ret == -EINVAL && fallback_flags != flags) ret = setup_once(r, entries, fallback_flags);
  return ret;
}

void ublk_uring_exit(struct ublk_uring *r) {
  if (r->fd < 0) return;
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->cq_ptr && r->cq_ptr != r->sq_ptr) munmap(r->cq_ptr, r->cq_len);
  if (r->sq_ptr) munmap(r->sq_ptr, r->sq_len);
  close(r->fd);
  r->fd = -1;
}

struct io_uring_sqe *ublk_uring_get_sqe(struct ublk_uring *r) {
  unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  if (r->sq_local_tail - head >= r->sq_entries) return NULL;
  unsigned index = r->sq_local_tail & *r->sq_mask;
  struct io_uring_sqe *sqe = (struct io_uring_sqe *)(r->sqes + (size_t)index * r->sqe_size);
  memset(sqe, 0, r->sqe_size);
  r->sq_array[index] = index;
  r->sq_local_tail++;
  return sqe;
}

int ublk_uring_submit_and_wait(struct ublk_uring *r, unsigned wait_nr, int timeout_ms) {
  __atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
  for (;;) {
    unsigned to_submit = r->sq_local_tail - r->sq_published;
    unsigned flags = wait_nr > 0 ? IORING_ENTER_GETEVENTS : 0;
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    void *argp = NULL;
    size_t argsz = 0;
    if (wait_nr > 0 && timeout_ms >= 0) {
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
      memset(&arg, 0, sizeof arg);
      arg.sigmask_sz = _NSIG / 8;
      arg.ts = (uint64_t)(uintptr_t)&ts;
      argp = &arg;
      argsz = sizeof arg;
      flags |= IORING_ENTER_EXT_ARG;
    }
    int ret = sys_enter(r->fd, to_submit, wait_nr, flags, argp, argsz);
    if (ret >= 0) {
      r->sq_published += (unsigned)ret;
      return ret;
    }
    if (errno != EINTR) return -errno;
  }
}

struct io_uring_cqe *ublk_uring_peek_cqe(struct ublk_uring *r) {
  unsigned head = *r->cq_head;
  unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
  if (head == tail) return NULL;
  return &r->cqes[head & *r->cq_mask];
}

void ublk_uring_cqe_seen(struct ublk_uring *r) {
  __atomic_store_n(r->cq_head, *r->cq_head + 1, __ATOMIC_RELEASE);
}
