/*
 * The queues of a ublk device: one io_uring per hardware queue, which keeps a FETCH_REQ outstanding
 * for every tag; a completed fetch is a request, described in the queue's descriptor array (a
 * read-only mmap of /dev/ublkcN). Data moves through per-tag buffers of the server's (page-aligned
 * anonymous memory, shown to JS as one ArrayBuffer per queue): the driver copies write data in
 * before the fetch completes and read data out at the commit. The driver wants every I/O command
 * of a queue from the task that first fetched on it. Two ways to own the rings:
 *
 *   inline (default): the JS thread owns them (see "Inline mode" below): each ring's completions
 *       are watched through an eventfd on Node's event loop, requests are reaped and handed to
 *       onEvent on the JS thread, and completeMany() submits the COMMIT_AND_FETCH_REQs itself.
 *   threads: one pthread per queue owns its ring; requests go to JS in batches through a
 *       threadsafe function; complete() queues (tag, result) under a lock and wakes the thread
 *       through an eventfd (a POLL_ADD on its ring); the thread then sends COMMIT_AND_FETCH_REQ.
 *
 *   openQueues(devId, nrQueues, depth, maxIoBytes, onEvent, inline) -> { handle, buffers: ArrayBuffer[] }
 *       opens /dev/ublkcN, maps the descriptors, fetches every tag (inline: from this thread;
 *       else the started threads do).
 *       onEvent(queue, batch, error): batch is an ArrayBuffer of 24-byte entries (u32 tag,
 *       u32 op_flags, u32 nr_sectors, u32 0, f64 start_sector); batch null means the queue ended
 *       (every tag aborted by STOP_DEV, or stopQueues), `error` the first errno it met (0 none).
 *   complete(handle, queue, tag, result)          result: bytes done, or -errno
 *   completeMany(handle, queue, Int32Array)       [tag, result, tag, result, ...]
 *   stopQueues(handle)   makes the queues end now (pending commands are cancelled with their ring)
 *   closeQueues(handle)  stopQueues, joins the threads, closes /dev/ublkcN (DEL_DEV waits for that)
 *
 * Nothing of the request path can fail into JS: a command the driver refuses ends that tag (and
 * is reported in the queue's end event); a late or unknown completion from JS is ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>
#include "ublk_abi.h"
#include "ublk_addon.h"
#include "ublk_uring.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define UD_POLL 0xffffffff00000001ull

enum tag_state { TAG_FETCHING = 0, TAG_IN_JS = 1, TAG_DONE = 2 };

struct completion {
  uint32_t tag;
  int32_t result;
};

struct batch_item {
  uint32_t tag;
  uint32_t op_flags;
  uint32_t nr_sectors;
  uint32_t pad;
  double start_sector;
};
_Static_assert(sizeof(struct batch_item) == 24, "batch entries are 24 bytes");

struct message {
  int queue;
  int error;  /* end message: first errno met */
  int ended;  /* 1: the queue thread ended */
  unsigned n; /* requests in items */
  struct batch_item items[];
};

struct dev;

struct queue {
  struct dev *dev;
  int q_id;
  pthread_t thread;
  int thread_started;
  int efd;
  const struct qublk_io_desc *descs;
  size_t descs_len;
  unsigned char *bufs;
  size_t bufs_len;
  napi_ref bufs_ref;
  uint8_t *state; /* enum tag_state, owned by the thread */
  pthread_mutex_t lock;
  struct completion *pending; /* depth entries, under lock */
  unsigned npending;
  int quit; /* under lock */
  /* Inline mode (the JS thread owns the ring; see open_inline()). */
  struct ublk_uring ring;
  int ring_open;
  uv_poll_t *poll;     /* NULL once closed (freed by its close callback) */
  unsigned outstanding; /* tags with a FETCH/COMMIT_AND_FETCH in the ring */
  unsigned in_js;       /* tags with JS */
  int error;            /* first errno met */
  int ended;            /* the end event was sent */
  struct batch_item *items; /* depth entries: one wakeup's requests */
};

struct dev {
  uint32_t dev_id;
  int cfd;
  unsigned nr_queues, depth;
  size_t max_io;
  napi_threadsafe_function tsfn;
  int closed;
  int inline_mode;
  napi_env env;
  napi_ref cb_ref;              /* inline: onEvent */
  napi_async_context async_ctx; /* inline: for napi_make_callback from the poll callback */
  struct queue queues[];
};

static void send_message(struct queue *q, struct message *m) {
  if (napi_call_threadsafe_function(q->dev->tsfn, m, napi_tsfn_nonblocking) != napi_ok) free(m);
}

static struct io_uring_sqe *need_sqe(struct ublk_uring *r) {
  struct io_uring_sqe *sqe = ublk_uring_get_sqe(r);
  if (!sqe) {
    ublk_uring_submit_and_wait(r, 0, -1);
    sqe = ublk_uring_get_sqe(r);
  }
  return sqe;
}

static void prep_io(struct queue *q, struct io_uring_sqe *sqe, unsigned op, unsigned tag, int result) {
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = q->dev->cfd;
  sqe->cmd_op = op;
  sqe->user_data = tag;
  struct qublk_io_cmd cmd = {.q_id = (uint16_t)q->q_id, .tag = (uint16_t)tag, .result = result,
                             .addr = (uint64_t)(uintptr_t)(q->bufs + (size_t)tag * q->dev->max_io)};
  memcpy((unsigned char *)sqe + 48, &cmd, sizeof cmd);
}

static void prep_poll(struct queue *q, struct io_uring_sqe *sqe) {
  sqe->opcode = IORING_OP_POLL_ADD;
  sqe->fd = q->efd;
  sqe->poll32_events = POLLIN;
  sqe->user_data = UD_POLL;
}

static void *queue_main(void *arg) {
  struct queue *q = arg;
  struct dev *d = q->dev;
  unsigned depth = d->depth;
  int error = 0;
  prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0); /* best effort: needs CAP_SYS_RESOURCE */
  char name[16];
  snprintf(name, sizeof name, "ublk%u-q%d", d->dev_id, q->q_id);
  pthread_setname_np(pthread_self(), name);

  unsigned entries = 1;
  while (entries < depth + 2) entries <<= 1;
  struct ublk_uring ring;
  int ret = ublk_uring_init(&ring, entries, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN);
  if (ret < 0 && ret == -EINVAL) ret = ublk_uring_init(&ring, entries, 0, 0);
  if (ret < 0) {
    error = -ret;
    goto out;
  }
  unsigned outstanding = 0, in_js = 0;
  for (unsigned tag = 0; tag < depth; tag++) {
    prep_io(q, need_sqe(&ring), QUBLK_U_IO_FETCH_REQ, tag, 0);
    q->state[tag] = TAG_FETCHING;
    outstanding++;
  }
  prep_poll(q, need_sqe(&ring));
  int poll_armed = 1;
  struct completion *taken = malloc(sizeof *taken * depth);
  struct message *m = NULL;
  if (!taken) {
    error = ENOMEM;
    goto out_ring;
  }
  for (;;) {
    ret = ublk_uring_submit_and_wait(&ring, 1, -1);
    if (ret < 0 && ret != -EBUSY && ret != -EAGAIN) {
      error = -ret;
      break;
    }
    int wake = 0;
    struct io_uring_cqe *cqe;
    while ((cqe = ublk_uring_peek_cqe(&ring)) != NULL) {
      uint64_t ud = cqe->user_data;
      int res = cqe->res;
      ublk_uring_cqe_seen(&ring);
      if (ud == UD_POLL) {
        poll_armed = 0;
        wake = 1;
        continue;
      }
      unsigned tag = (unsigned)ud;
      if (tag >= depth || q->state[tag] != TAG_FETCHING) continue;
      outstanding--;
      if (res == QUBLK_IO_RES_OK) {
        if (!m) {
          m = malloc(sizeof *m + sizeof(struct batch_item) * depth);
          if (!m) { /* cannot hand it over: fail the request at once */
            prep_io(q, need_sqe(&ring), QUBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, -ENOMEM);
            outstanding++;
            continue;
          }
          m->queue = q->q_id;
          m->error = 0;
          m->ended = 0;
          m->n = 0;
        }
        const struct qublk_io_desc *desc = &q->descs[tag];
        struct batch_item *it = &m->items[m->n++];
        it->tag = tag;
        it->op_flags = __atomic_load_n(&desc->op_flags, __ATOMIC_RELAXED);
        it->nr_sectors = desc->nr_sectors;
        it->pad = 0;
        it->start_sector = (double)desc->start_sector;
        q->state[tag] = TAG_IN_JS;
        in_js++;
      } else {
        /* UBLK_IO_RES_ABORT (-ENODEV): the device is stopping; anything else: refused. */
        q->state[tag] = TAG_DONE;
        if (res != -ENODEV && res != -ECANCELED && !error) error = -res;
      }
    }
    if (m) {
      send_message(q, m);
      m = NULL;
    }
    if (wake) {
      uint64_t value;
      while (read(q->efd, &value, sizeof value) < 0 && errno == EINTR) {
      }
      pthread_mutex_lock(&q->lock);
      unsigned n = q->npending;
      memcpy(taken, q->pending, sizeof *taken * n);
      q->npending = 0;
      int quit = q->quit;
      pthread_mutex_unlock(&q->lock);
      if (quit) break;
      for (unsigned i = 0; i < n; i++) {
        unsigned tag = taken[i].tag;
        if (tag >= depth || q->state[tag] != TAG_IN_JS) continue;
        prep_io(q, need_sqe(&ring), QUBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, taken[i].result);
        q->state[tag] = TAG_FETCHING;
        in_js--;
        outstanding++;
      }
    }
    if (outstanding == 0 && in_js == 0) break;
    if (!poll_armed) {
      prep_poll(q, need_sqe(&ring));
      poll_armed = 1;
    }
  }
  free(taken);
out_ring:
  ublk_uring_exit(&ring); /* cancels whatever is still outstanding */
out:;
  struct message *end = malloc(sizeof *end);
  if (end) {
    end->queue = q->q_id;
    end->error = error;
    end->ended = 1;
    end->n = 0;
    send_message(q, end);
  }
  napi_release_threadsafe_function(d->tsfn, napi_tsfn_release);
  return NULL;
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  struct message *m = data;
  if (env == NULL || js_cb == NULL) {
    free(m);
    return;
  }
  napi_value argv[3], undefined;
  napi_get_undefined(env, &undefined);
  napi_create_int32(env, m->queue, &argv[0]);
  if (m->ended) {
    napi_get_null(env, &argv[1]);
  } else {
    void *bytes;
    size_t len = sizeof(struct batch_item) * m->n;
    if (napi_create_arraybuffer(env, len, &bytes, &argv[1]) != napi_ok) {
      free(m);
      return;
    }
    memcpy(bytes, m->items, len);
  }
  napi_create_int32(env, m->error, &argv[2]);
  free(m);
  napi_call_function(env, undefined, js_cb, 3, argv, NULL);
}


/* ---------------------------------------------------------------------------------------------- */
/* Inline mode: the JS thread owns each queue's ring                                              */
/* ---------------------------------------------------------------------------------------------- */
/*
 * No queue threads: the JS thread sets up each queue's ring, sends every FETCH_REQ (so it is the
 * queue's daemon in the driver's eyes), and watches an eventfd registered with the ring
 * (IORING_REGISTER_EVENTFD) with a uv_poll_t on Node's event loop. One wakeup: the completed
 * fetches are reaped and handed to onEvent in one call (napi_make_callback: the microtasks, where
 * the server gathers its completions, run before it returns); completeMany() puts the
 * COMMIT_AND_FETCH_REQs in the ring and submits them with one io_uring_enter, on the same thread.
 * The ring has no COOP_TASKRUN / DEFER_TASKRUN: the driver's task work must interrupt the JS thread
 * (TWA_SIGNAL) even while it sleeps in epoll_wait, which then sees the eventfd.
 */
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif
#ifndef IORING_REGISTER_EVENTFD
#define IORING_REGISTER_EVENTFD 4
#endif

static void inline_submit(struct queue *q) {
  if (!q->ring_open || q->ring.sq_local_tail == q->ring.sq_published) return;
  int ret = ublk_uring_submit_and_wait(&q->ring, 0, -1);
  if (ret < 0 && ret != -EBUSY && ret != -EAGAIN && !q->error) q->error = -ret;
}

static void poll_closed(uv_handle_t *h) { free(h); }

static void inline_close_queue(struct queue *q) {
  if (q->poll) {
    uv_poll_stop(q->poll);
    uv_close((uv_handle_t *)q->poll, poll_closed);
    q->poll = NULL;
  }
  if (q->ring_open) {
    ublk_uring_exit(&q->ring); /* cancels whatever is still outstanding */
    q->ring_open = 0;
  }
}

static void inline_commit(struct queue *q, uint32_t tag, int32_t result) {
  if (!q->ring_open || tag >= q->dev->depth || q->state[tag] != TAG_IN_JS) return;
  prep_io(q, need_sqe(&q->ring), QUBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result);
  q->state[tag] = TAG_FETCHING;
  q->in_js--;
  q->outstanding++;
}

/* onEvent(queue, batch, error), from the event loop (from_loop) or from inside a JS call. */
static void inline_deliver(struct dev *d, struct queue *q, napi_value batch, int from_loop) {
  napi_env env = d->env;
  napi_value cb, argv[3], recv;
  if (!d->cb_ref || napi_get_reference_value(env, d->cb_ref, &cb) != napi_ok || cb == NULL) return;
  /* napi_make_callback takes its context from the receiver: an object (the global one). */
  if (from_loop) napi_get_global(env, &recv);
  else napi_get_undefined(env, &recv);
  napi_create_int32(env, q->q_id, &argv[0]);
  if (batch) argv[1] = batch;
  else napi_get_null(env, &argv[1]);
  napi_create_int32(env, batch ? 0 : q->error, &argv[2]);
  napi_status st = from_loop ? napi_make_callback(env, d->async_ctx, recv, cb, 3, argv, NULL) : napi_call_function(env, recv, cb, 3, argv, NULL);
  if (st == napi_pending_exception && from_loop) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  } else if (st != napi_ok && st != napi_pending_exception) {
    fprintf(stderr, "qcow2 ublk: queue %d: cannot call onEvent (napi status %d)\n", q->q_id, (int)st);
  }
}

static void inline_end(struct dev *d, struct queue *q, int from_loop) {
  if (q->ended) return;
  inline_close_queue(q);
  q->ended = 1;
  inline_deliver(d, q, NULL, from_loop);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  struct queue *q = h->data;
  struct dev *d = q->dev;
  uint64_t value;
  while (read(q->efd, &value, sizeof value) < 0 && errno == EINTR) {
  }
  if (d->closed || !q->ring_open) return;
  unsigned depth = d->depth, n = 0;
  struct io_uring_cqe *cqe;
  while ((cqe = ublk_uring_peek_cqe(&q->ring)) != NULL) {
    uint64_t ud = cqe->user_data;
    int res = cqe->res;
    ublk_uring_cqe_seen(&q->ring);
    unsigned tag = (unsigned)ud;
    if (tag >= depth || q->state[tag] != TAG_FETCHING) continue;
    q->outstanding--;
    if (res == QUBLK_IO_RES_OK && n < depth) {
      const struct qublk_io_desc *desc = &q->descs[tag];
      struct batch_item *it = &q->items[n++];
      it->tag = tag;
      it->op_flags = __atomic_load_n(&desc->op_flags, __ATOMIC_RELAXED);
      it->nr_sectors = desc->nr_sectors;
      it->pad = 0;
      it->start_sector = (double)desc->start_sector;
      q->state[tag] = TAG_IN_JS;
      q->in_js++;
    } else {
      /* UBLK_IO_RES_ABORT (-ENODEV): the device is stopping; anything else: refused. */
      q->state[tag] = TAG_DONE;
      if (res != -ENODEV && res != -ECANCELED && !q->error) q->error = -res;
    }
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(d->env, &scope) != napi_ok) return;
  if (n) {
    napi_value ab;
    void *bytes;
    if (napi_create_arraybuffer(d->env, sizeof(struct batch_item) * n, &bytes, &ab) == napi_ok) {
      memcpy(bytes, q->items, sizeof(struct batch_item) * n);
      inline_deliver(d, q, ab, 1);
    } else {
      for (unsigned i = 0; i < n; i++) inline_commit(q, q->items[i].tag, -ENOMEM);
    }
  }
  if (!d->closed && q->ring_open) {
    inline_submit(q);
    if (q->outstanding == 0 && q->in_js == 0) inline_end(d, q, 1);
  }
  napi_close_handle_scope(d->env, scope);
}

/* Sets up queue q's ring on this (the JS) thread and fetches every tag. 0, or an errno (*step says where). */
static int inline_open_queue(napi_env env, struct queue *q, const char **step) {
  struct dev *d = q->dev;
  unsigned entries = 1;
  while (entries < d->depth + 2) entries <<= 1;
  q->items = malloc(sizeof *q->items * d->depth);
  if (!q->items) {
    *step = "malloc";
    return ENOMEM;
  }
  int ret = ublk_uring_init(&q->ring, entries, 0, 0);
  if (ret < 0) {
    *step = "io_uring_setup";
    return -ret;
  }
  q->ring_open = 1;
  if (syscall(__NR_io_uring_register, q->ring.fd, IORING_REGISTER_EVENTFD, &q->efd, 1) < 0) {
    *step = "io_uring_register";
    return errno;
  }
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    *step = "napi_get_uv_event_loop";
    return EINVAL;
  }
  uv_poll_t *p = malloc(sizeof *p);
  if (!p) {
    *step = "malloc";
    return ENOMEM;
  }
  int e = uv_poll_init(loop, p, q->efd);
  if (e) {
    free(p);
    *step = "uv_poll_init";
    return -e;
  }
  p->data = q;
  q->poll = p;
  e = uv_poll_start(p, UV_READABLE, on_poll);
  if (e) {
    *step = "uv_poll_start";
    return -e;
  }
  for (unsigned tag = 0; tag < d->depth; tag++) {
    prep_io(q, need_sqe(&q->ring), QUBLK_U_IO_FETCH_REQ, tag, 0);
    q->state[tag] = TAG_FETCHING;
    q->outstanding++;
  }
  ret = ublk_uring_submit_and_wait(&q->ring, 0, -1);
  if (ret < 0) {
    *step = "io_uring_enter";
    return -ret;
  }
  return 0;
}

static void stop_all(struct dev *d) {
  for (unsigned i = 0; i < d->nr_queues; i++) {
    struct queue *q = &d->queues[i];
    if (q->efd < 0) continue;
    pthread_mutex_lock(&q->lock);
    q->quit = 1;
    pthread_mutex_unlock(&q->lock);
    uint64_t one = 1;
    ssize_t w = write(q->efd, &one, sizeof one);
    (void)w;
  }
}

static void close_dev(napi_env env, struct dev *d) {
  if (d->closed) return;
  d->closed = 1;
  if (d->inline_mode) {
    for (unsigned i = 0; i < d->nr_queues; i++) inline_close_queue(&d->queues[i]);
    if (env && d->cb_ref) napi_delete_reference(env, d->cb_ref);
    d->cb_ref = NULL;
    if (env && d->async_ctx) napi_async_destroy(env, d->async_ctx);
    d->async_ctx = NULL;
  } else {
    stop_all(d);
  }
  for (unsigned i = 0; i < d->nr_queues; i++) {
    struct queue *q = &d->queues[i];
    if (q->thread_started) pthread_join(q->thread, NULL);
    q->thread_started = 0;
  }
  for (unsigned i = 0; i < d->nr_queues; i++) {
    struct queue *q = &d->queues[i];
    if (q->descs) munmap((void *)q->descs, q->descs_len);
    q->descs = NULL;
    if (q->efd >= 0) close(q->efd);
    q->efd = -1;
    free(q->state);
    q->state = NULL;
    free(q->pending);
    q->pending = NULL;
    free(q->items);
    q->items = NULL;
    pthread_mutex_destroy(&q->lock);
    /* The buffers stay mapped until JS lets go of their ArrayBuffer (its finalizer unmaps them). */
    if (env && q->bufs_ref) napi_delete_reference(env, q->bufs_ref);
    q->bufs_ref = NULL;
  }
  if (d->cfd >= 0) close(d->cfd);
  d->cfd = -1;
}

static void dev_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  struct dev *d = data;
  close_dev(env, d);
  free(d);
}

static void bufs_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static struct dev *get_dev(napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "not a ublk queue handle");
    return NULL;
  }
  return data;
}

napi_value ublk_open_queues(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uint32_t dev_id, nr_queues, depth, max_io;
  bool inline_mode = false;
  if (argc >= 6) napi_get_value_bool(env, argv[5], &inline_mode);
  napi_valuetype cb_type = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[4], &cb_type);
  if (argc < 5 || napi_get_value_uint32(env, argv[0], &dev_id) != napi_ok || napi_get_value_uint32(env, argv[1], &nr_queues) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &depth) != napi_ok || napi_get_value_uint32(env, argv[3], &max_io) != napi_ok ||
      cb_type != napi_function || nr_queues < 1 || nr_queues > 4096 || depth < 1 || depth > QUBLK_MAX_QUEUE_DEPTH || max_io < 4096 ||
      max_io % 4096 != 0) {
    napi_throw_type_error(env, "EINVAL", "expected (devId, nrQueues 1..4096, depth 1..4096, maxIoBytes: pages, onEvent)");
    return NULL;
  }
  long page = sysconf(_SC_PAGESIZE);
  struct dev *d = calloc(1, sizeof *d + sizeof(struct queue) * nr_queues);
  if (!d) return ublk_throw_errno(env, ENOMEM, "calloc", "ublk queues");
  d->dev_id = dev_id;
  d->nr_queues = nr_queues;
  d->depth = depth;
  d->max_io = max_io;
  d->inline_mode = inline_mode;
  d->env = env;
  d->cfd = -1;
  for (unsigned i = 0; i < nr_queues; i++) d->queues[i].efd = -1;
  char path[64];
  snprintf(path, sizeof path, "/dev/ublkc%u", dev_id);
  /* devtmpfs makes the node as the device is added; give a udev-managed /dev a moment. */
  for (int attempt = 0; attempt < 100; attempt++) {
    d->cfd = open(path, O_RDWR | O_CLOEXEC);
    if (d->cfd >= 0 || errno != ENOENT) break;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (d->cfd < 0) {
    int err = errno;
    free(d);
    char what[96];
    snprintf(what, sizeof what, "cannot open %s", path);
    return ublk_throw_errno(env, err, "open", what);
  }
  napi_value result, buffers;
  napi_create_object(env, &result);
  napi_create_array_with_length(env, nr_queues, &buffers);
  int err = 0;
  const char *step = "";
  for (unsigned i = 0; i < nr_queues && !err; i++) {
    struct queue *q = &d->queues[i];
    q->dev = d;
    q->q_id = (int)i;
    pthread_mutex_init(&q->lock, NULL);
    q->descs_len = ((size_t)depth * sizeof(struct qublk_io_desc) + page - 1) / page * page;
    void *descs = mmap(NULL, q->descs_len, PROT_READ, MAP_SHARED | MAP_POPULATE, d->cfd, (off_t)i * QUBLK_DESC_QUEUE_STRIDE(page));
    if (descs == MAP_FAILED) {
      err = errno;
      step = "mmap of the descriptors";
      break;
    }
    q->descs = descs;
    q->bufs_len = (size_t)depth * max_io;
    void *bufs = mmap(NULL, q->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bufs == MAP_FAILED) {
      err = errno;
      step = "mmap of the buffers";
      break;
    }
    q->bufs = bufs;
    napi_value ab;
    if (napi_create_external_arraybuffer(env, bufs, q->bufs_len, bufs_finalize, (void *)(uintptr_t)q->bufs_len, &ab) != napi_ok) {
      munmap(bufs, q->bufs_len);
      q->bufs = NULL;
      err = ENOMEM;
      step = "external ArrayBuffer";
      break;
    }
    napi_create_reference(env, ab, 1, &q->bufs_ref);
    napi_set_element(env, buffers, i, ab);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q->state = calloc(depth, 1);
    q->pending = calloc(depth, sizeof *q->pending);
    if (q->efd < 0 || !q->state || !q->pending) {
      err = q->efd < 0 ? errno : ENOMEM;
      step = "eventfd";
      break;
    }
  }
  if (!err && inline_mode) {
    napi_value name;
    napi_create_string_utf8(env, "ublk-queue", NAPI_AUTO_LENGTH, &name);
    if (napi_create_reference(env, argv[4], 1, &d->cb_ref) != napi_ok || napi_async_init(env, NULL, name, &d->async_ctx) != napi_ok) {
      err = ENOMEM;
      step = "napi_async_init";
    }
    for (unsigned i = 0; i < nr_queues && !err; i++) err = inline_open_queue(env, &d->queues[i], &step);
  }
  if (!err && !inline_mode) {
    napi_value name;
    napi_create_string_utf8(env, "ublk-queue", NAPI_AUTO_LENGTH, &name);
    if (napi_create_threadsafe_function(env, argv[4], NULL, name, 0, nr_queues, NULL, NULL, NULL, call_js, &d->tsfn) != napi_ok) {
      err = ENOMEM;
      step = "threadsafe function";
    }
  }
  if (!err && !inline_mode) {
    /* The threads take no signals: Node's main thread handles SIGTERM/SIGINT. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < nr_queues; i++) {
      struct queue *q = &d->queues[i];
      int e = pthread_create(&q->thread, NULL, queue_main, q);
      if (e) {
        err = e;
        step = "pthread_create";
        for (unsigned j = i; j < nr_queues; j++) napi_release_threadsafe_function(d->tsfn, napi_tsfn_release);
        break;
      }
      q->thread_started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (err) {
    close_dev(env, d);
    free(d);
    char what[96];
    snprintf(what, sizeof what, "ublk queues of device %u: %s failed", dev_id, step);
    return ublk_throw_errno(env, err, step, what);
  }
  napi_value handle;
  napi_create_external(env, d, dev_finalize, NULL, &handle);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "buffers", buffers);
  return result;
}

static void push_completion(struct queue *q, uint32_t tag, int32_t result) {
  int was_empty = 0;
  pthread_mutex_lock(&q->lock);
  if (q->npending < q->dev->depth && !q->quit) {
    was_empty = q->npending == 0;
    q->pending[q->npending].tag = tag;
    q->pending[q->npending].result = result;
    q->npending++;
  }
  pthread_mutex_unlock(&q->lock);
  if (was_empty) {
    uint64_t one = 1;
    ssize_t w = write(q->efd, &one, sizeof one);
    (void)w;
  }
}

napi_value ublk_complete(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return NULL;
  struct dev *d = get_dev(env, argv[0]);
  if (!d) return NULL;
  uint32_t queue, tag;
  int32_t result;
  if (napi_get_value_uint32(env, argv[1], &queue) != napi_ok || napi_get_value_uint32(env, argv[2], &tag) != napi_ok ||
      napi_get_value_int32(env, argv[3], &result) != napi_ok || queue >= d->nr_queues || tag >= d->depth) {
    napi_throw_type_error(env, "EINVAL", "expected (handle, queue, tag, result)");
    return NULL;
  }
  if (d->closed) return NULL;
  if (d->inline_mode) {
    inline_commit(&d->queues[queue], tag, result);
    inline_submit(&d->queues[queue]);
  } else {
    push_completion(&d->queues[queue], tag, result);
  }
  return NULL;
}

napi_value ublk_complete_many(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return NULL;
  struct dev *d = get_dev(env, argv[0]);
  if (!d) return NULL;
  uint32_t queue, count;
  napi_typedarray_type type;
  size_t length;
  void *data;
  bool is_typed = false;
  napi_is_typedarray(env, argv[2], &is_typed);
  if (napi_get_value_uint32(env, argv[1], &queue) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_int32_array ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok || queue >= d->nr_queues || (size_t)count * 2 > length) {
    napi_throw_type_error(env, "EINVAL", "expected (handle, queue, Int32Array [tag, result]..., count)");
    return NULL;
  }
  if (d->closed || count == 0) return NULL;
  struct queue *q = &d->queues[queue];
  const int32_t *pairs = data;
  if (d->inline_mode) {
    for (uint32_t i = 0; i < count; i++) inline_commit(q, (uint32_t)pairs[2 * i], pairs[2 * i + 1]);
    inline_submit(q);
    return NULL;
  }
  int was_empty = 0;
  pthread_mutex_lock(&q->lock);
  if (!q->quit) {
    was_empty = q->npending == 0;
    for (uint32_t i = 0; i < count && q->npending < d->depth; i++) {
      if ((uint32_t)pairs[2 * i] >= d->depth) continue;
      q->pending[q->npending].tag = (uint32_t)pairs[2 * i];
      q->pending[q->npending].result = pairs[2 * i + 1];
      q->npending++;
    }
    if (q->npending == 0) was_empty = 0;
  }
  pthread_mutex_unlock(&q->lock);
  if (was_empty) {
    uint64_t one = 1;
    ssize_t w = write(q->efd, &one, sizeof one);
    (void)w;
  }
  return NULL;
}

napi_value ublk_stop_queues(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  struct dev *d = get_dev(env, argv[0]);
  if (d && !d->closed) {
    if (d->inline_mode) {
      for (unsigned i = 0; i < d->nr_queues; i++) inline_end(d, &d->queues[i], 0);
    } else {
      stop_all(d);
    }
  }
  return NULL;
}

napi_value ublk_close_queues(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  struct dev *d = get_dev(env, argv[0]);
  if (d) close_dev(env, d);
  return NULL;
}
