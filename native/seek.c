/*
 * lseek(2) with SEEK_DATA / SEEK_HOLE for `qcow2 map` (Node has no binding for them).
 *
 *   seekData(fd, offset) -> next data offset >= offset, or -1 when there is none (ENXIO: offset is
 *                           in a trailing hole or at/after end of file)
 *   seekHole(fd, offset) -> next hole offset >= offset (end of file counts as a hole), or -1 (ENXIO)
 *
 * Any other failure (EINVAL when the file system cannot tell, EBADF, ...) throws an Error whose
 * `code` is the errno name, so the caller can fall back to "no information".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, int err, const char *what) {
  const char *code = err == EINVAL ? "EINVAL" : err == EBADF ? "EBADF" : err == ENOTSUP ? "ENOTSUP" : err == EOVERFLOW ? "EOVERFLOW" : "EIO";
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, code, message);
  return NULL;
}

static napi_value do_seek(napi_env env, napi_callback_info info, int whence) {
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
  off_t r = lseek(fd, (off_t)offset, whence == 0 ? SEEK_DATA : SEEK_HOLE);
  napi_value out;
  if (r < 0) {
    if (errno == ENXIO) {
      napi_create_int64(env, -1, &out);
      return out;
    }
    return throw_errno(env, errno, whence == 0 ? "lseek(SEEK_DATA) failed" : "lseek(SEEK_HOLE) failed");
  }
  napi_create_int64(env, (int64_t)r, &out);
  return out;
#else
  return throw_errno(env, ENOTSUP, "SEEK_DATA/SEEK_HOLE are not available on this system");
#endif
}

static napi_value seek_data(napi_env env, napi_callback_info info) { return do_seek(env, info, 0); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return do_seek(env, info, 1); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
