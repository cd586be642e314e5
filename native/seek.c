/*
 * lseek(2) with SEEK_DATA / SEEK_HOLE for `qcow2 map` (Node has no binding for them).
 *
 *   seekData(fd, offset) -> next data offset >= offset, or -1 when there is none (ENXIO: offset is
 *                           in a trailing hole or at/after end of file)
 *   seekHole(fd, offset) -> next hole offset >= offset (end of file counts as a hole), or -1 (ENXIO)
 *
 * Any other failure (EINVAL when the file system cannot tell, EBADF, ...) throws an Error whose
 * `code` is the errno name (see addon.c), so the caller can fall back to "no information".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/types.h>
#include <unistd.h>
#include "addon.h"

static napi_value do_seek(napi_env env, napi_callback_info info, int data) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, offset)");
    return NULL;
  }
  int32_t fd;
  int64_t offset;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok || offset < 0) {
    napi_throw_type_error(env, "EINVAL", "fd and offset must be non-negative integers");
    return NULL;
  }
#if defined(SEEK_DATA) && defined(SEEK_HOLE)
  off_t r = lseek(fd, (off_t)offset, data ? SEEK_DATA : SEEK_HOLE);
  napi_value out;
  if (r < 0) {
    if (errno == ENXIO) {
      napi_create_int64(env, -1, &out);
      return out;
    }
    return qcow2_throw_errno(env, errno, "lseek", data ? "lseek(SEEK_DATA) failed" : "lseek(SEEK_HOLE) failed");
  }
  napi_create_int64(env, (int64_t)r, &out);
  return out;
#else
  (void)fd;
  return qcow2_throw_errno(env, ENOTSUP, "lseek", "SEEK_DATA/SEEK_HOLE are not available on this system");
#endif
}

napi_value qcow2_seek_data(napi_env env, napi_callback_info info) { return do_seek(env, info, 1); }
napi_value qcow2_seek_hole(napi_env env, napi_callback_info info) { return do_seek(env, info, 0); }
