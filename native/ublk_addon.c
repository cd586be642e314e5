/*
 * The ublk addon (qcow2_ublk.node, loaded by src/ublk/native.ts): what Node cannot do itself to
 * serve a Linux ublk device. Only system calls live here; the ABI structures (device info,
 * parameters) are encoded in TypeScript (src/ublk/uapi.ts) and the requests are run by the engine.
 *
 *   control(op, devId, queueId, buf, data0, timeoutMs, name) -> Promise<number>
 *       one control command (an ioctl-encoded UBLK_U_CMD_*) on /dev/ublk-control as an io_uring
 *       URING_CMD on a ring of its own (IORING_SETUP_SQE128), run on a libuv worker thread: START_DEV
 *       waits for the queues' fetches and the partition scan, STOP_DEV for the requests in flight,
 *       both served meanwhile by the JS thread. `buf` (a Uint8Array or null) is the command's
 *       addr/len; it is kept alive until the command completes. Resolves with the completion's
 *       result (>= 0); rejects with an errno Error (code ENOENT when there is no /dev/ublk-control,
 *       ETIMEDOUT after timeoutMs).
 *   openQueues / complete / completeMany / stopQueues / closeQueues   the queue threads (ublk_queue.c)
 *   setIoFlusher()  prctl(PR_SET_IO_FLUSHER) on the calling thread (the one running the engine's
 *                   I/O), so that its allocations do not recurse into writeback to its own device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include "ublk_abi.h"
#include "ublk_addon.h"
#include "ublk_uring.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

static const char *errno_name(int err) {
  switch (err) {
#define NAME(e) \
  case e:       \
    return #e;
    NAME(EPERM) NAME(ENOENT) NAME(EINTR) NAME(EIO) NAME(ENXIO) NAME(EBADF) NAME(EAGAIN) NAME(ENOMEM) NAME(EACCES) NAME(EBUSY)
    NAME(EEXIST) NAME(ENODEV) NAME(EINVAL) NAME(ENOSPC) NAME(ENOSYS) NAME(EOVERFLOW) NAME(ETIMEDOUT) NAME(ETIME) NAME(ECANCELED)
    NAME(EALREADY) NAME(ENOTSUP) NAME(ERANGE) NAME(EMFILE) NAME(ESRCH)
#undef NAME
    default:
      return "EUNKNOWN";
  }
}

napi_value ublk_errno_error(napi_env env, int err, const char *syscall, const char *what) {
  char message[240];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error, value;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok || napi_create_error(env, code, msg, &error) != napi_ok) {
    return NULL;
  }
  if (napi_create_int32(env, -err, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok) napi_set_named_property(env, error, "syscall", value);
  return error;
}

napi_value ublk_throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  napi_value error = ublk_errno_error(env, err, syscall, what);
  if (error) napi_throw(env, error);
  else napi_throw_error(env, errno_name(err), what);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Control commands                                                                               */
/* ---------------------------------------------------------------------------------------------- */

struct control_work {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buf_ref;
  uint32_t op;
  uint32_t dev_id;
  uint16_t queue_id;
  void *buf;
  size_t len;
  uint64_t data0;
  int64_t timeout_ms;
  char name[48];
  /* results */
  int res;          /* completion result, or -errno of the step that failed */
  const char *step; /* the system call that failed, NULL when the command ran */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs on a libuv worker thread. */
static void control_execute(napi_env env, void *data) {
  (void)env;
  struct control_work *w = data;
  w->step = NULL;
  int fd = open("/dev/ublk-control", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    w->res = -errno;
    w->step = "open";
    return;
  }
  struct ublk_uring ring;
  int ret = ublk_uring_init(&ring, 4, IORING_SETUP_SQE128, IORING_SETUP_SQE128);
  if (ret < 0) {
    close(fd);
    w->res = ret;
    w->step = "io_uring_setup";
    return;
  }
  struct io_uring_sqe *sqe = ublk_uring_get_sqe(&ring);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = w->op;
  sqe->user_data = 1;
  struct qublk_ctrl_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.dev_id = w->dev_id;
  cmd.queue_id = w->queue_id;
  cmd.addr = (uint64_t)(uintptr_t)w->buf;
  cmd.len = (uint16_t)w->len;
  cmd.data0 = w->data0;
  memcpy((unsigned char *)sqe + 48, &cmd, sizeof cmd); /* the SQE's command area */
  int64_t deadline = w->timeout_ms >= 0 ? now_ms() + w->timeout_ms : -1;
  ret = ublk_uring_submit_and_wait(&ring, 1, w->timeout_ms >= 0 ? (int)w->timeout_ms : -1);
  struct io_uring_cqe *cqe = NULL;
  while (ret >= 0 && (cqe = ublk_uring_peek_cqe(&ring)) == NULL) {
    int left = -1;
    if (deadline >= 0) {
      int64_t rest = deadline - now_ms();
      if (rest <= 0) {
        ret = -ETIME;
        break;
      }
      left = (int)rest;
    }
    ret = ublk_uring_submit_and_wait(&ring, 1, left);
  }
  if (cqe) {
    w->res = cqe->res;
    ublk_uring_cqe_seen(&ring);
  } else {
    /* Closing the ring cancels the command (the kernel may still be working on it). */
    w->res = ret == -ETIME ? -ETIMEDOUT : ret;
    w->step = ret == -ETIME ? "timeout" : "io_uring_enter";
  }
  ublk_uring_exit(&ring);
  close(fd);
}

static void control_complete(napi_env env, napi_status status, void *data) {
  struct control_work *w = data;
  napi_value result;
  if (status == napi_ok && w->res >= 0) {
    napi_create_int64(env, w->res, &result);
    napi_resolve_deferred(env, w->deferred, result);
  } else {
    char what[160];
    int err = status == napi_ok ? -w->res : ECANCELED;
    if (w->step && strcmp(w->step, "open") == 0) snprintf(what, sizeof what, "cannot open /dev/ublk-control");
    else if (w->step && strcmp(w->step, "timeout") == 0) snprintf(what, sizeof what, "ublk %s did not complete in %lld ms", w->name, (long long)w->timeout_ms);
    else if (w->step) snprintf(what, sizeof what, "ublk %s: %s failed", w->name, w->step);
    else snprintf(what, sizeof what, "ublk %s failed", w->name);
    napi_value error = ublk_errno_error(env, err, w->step ? w->step : "ublk", what);
    if (!error) napi_get_undefined(env, &error);
    napi_reject_deferred(env, w->deferred, error);
  }
  if (w->buf_ref) napi_delete_reference(env, w->buf_ref);
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value control(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uint32_t op, dev_id, queue_id;
  int64_t data0, timeout_ms;
  if (argc < 7 || napi_get_value_uint32(env, argv[0], &op) != napi_ok || napi_get_value_uint32(env, argv[1], &dev_id) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &queue_id) != napi_ok || napi_get_value_int64(env, argv[4], &data0) != napi_ok ||
      napi_get_value_int64(env, argv[5], &timeout_ms) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected (op, devId, queueId, buf, data0, timeoutMs, name)");
    return NULL;
  }
  struct control_work *w = calloc(1, sizeof *w);
  if (!w) return ublk_throw_errno(env, ENOMEM, "calloc", "ublk control command");
  w->op = op;
  w->dev_id = dev_id;
  w->queue_id = (uint16_t)queue_id;
  w->data0 = (uint64_t)data0;
  w->timeout_ms = timeout_ms;
  size_t name_len = 0;
  napi_get_value_string_utf8(env, argv[6], w->name, sizeof w->name, &name_len);
  napi_valuetype type;
  napi_typeof(env, argv[3], &type);
  if (type != napi_null && type != napi_undefined) {
    bool is_typed = false;
    napi_is_typedarray(env, argv[3], &is_typed);
    napi_typedarray_type ta_type;
    size_t length;
    void *data;
    if (!is_typed || napi_get_typedarray_info(env, argv[3], &ta_type, &length, &data, NULL, NULL) != napi_ok || ta_type != napi_uint8_array ||
        length > 0xffff) {
      free(w);
      napi_throw_type_error(env, "EINVAL", "buf must be a Uint8Array of at most 65535 bytes, or null");
      return NULL;
    }
    w->buf = data;
    w->len = length;
    napi_create_reference(env, argv[3], 1, &w->buf_ref);
  }
  napi_value promise, resource_name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "ublk-control", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_async_work(env, NULL, resource_name, control_execute, control_complete, w, &w->work) != napi_ok ||
      napi_queue_async_work(env, w->work) != napi_ok) {
    if (w->buf_ref) napi_delete_reference(env, w->buf_ref);
    free(w);
    return ublk_throw_errno(env, ENOMEM, "napi_queue_async_work", "ublk control command");
  }
  return promise;
}

static napi_value set_io_flusher(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  int ok = prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"control", NULL, control, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openQueues", NULL, ublk_open_queues, NULL, NULL, NULL, napi_enumerable, NULL},
      {"complete", NULL, ublk_complete, NULL, NULL, NULL, napi_enumerable, NULL},
      {"completeMany", NULL, ublk_complete_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopQueues", NULL, ublk_stop_queues, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeQueues", NULL, ublk_close_queues, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setIoFlusher", NULL, set_io_flusher, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
