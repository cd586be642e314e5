/*
 * fallocate(2) for punching holes and zeroing ranges (Node has no binding for it).
 *
 *   fallocate(fd, mode, offset, length) -> undefined; mode is a set of the FALLOC_FL_* constants
 *                                          exported alongside (FALLOC_FL_PUNCH_HOLE must come with
 *                                          FALLOC_FL_KEEP_SIZE, as the kernel requires)
 *
 * Synchronous, on the calling thread, like NodeFile's default pread/pwrite: on the file systems that
 * support them these calls change extents, not data, and return quickly. A failure throws an Error
 * whose `code` is the errno name (see addon.c): ENOTSUP where the file system or the system does not
 * do that mode (the caller then writes zeros instead), ENOSPC, EIO, EBADF, ...; EINTR is retried.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include "addon.h"
#ifdef __linux__
#include <linux/falloc.h>
#endif

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

napi_value qcow2_fallocate(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t fd, mode;
  int64_t offset, length;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &mode) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok || fd < 0 ||
      offset < 0 || length <= 0) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, mode, offset, length) with offset >= 0 and length > 0");
    return NULL;
  }
#ifdef __linux__
  int r;
  do r = fallocate(fd, mode, (off_t)offset, (off_t)length);
  while (r < 0 && errno == EINTR);
  if (r < 0) return qcow2_throw_errno(env, errno, "fallocate", "fallocate failed");
  return NULL;
#else
  (void)fd;
  (void)mode;
  return qcow2_throw_errno(env, ENOTSUP, "fallocate", "fallocate is not available on this system");
#endif
}

void qcow2_fallocate_constants(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    int32_t value;
  } constants[] = {
      {"FALLOC_FL_KEEP_SIZE", FALLOC_FL_KEEP_SIZE},
      {"FALLOC_FL_PUNCH_HOLE", FALLOC_FL_PUNCH_HOLE},
      {"FALLOC_FL_ZERO_RANGE", FALLOC_FL_ZERO_RANGE},
  };
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
    napi_value v;
    if (napi_create_int32(env, constants[i].value, &v) == napi_ok) napi_set_named_property(env, exports, constants[i].name, v);
  }
}
