/*
 * Errors of the native addon's system calls, as Node's own fs errors look: the errno name as
 * `code`, the negated errno, the system call, and "<what>: <strerror>" as the message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "addon.h"

static const char *errno_name(int err) {
  switch (err) {
#define NAME(e) \
  case e:       \
    return #e;
    NAME(EPERM) NAME(ENOENT) NAME(EINTR) NAME(EIO) NAME(ENXIO) NAME(EBADF) NAME(EAGAIN) NAME(ENOMEM)
    NAME(EACCES) NAME(EBUSY) NAME(ENODEV) NAME(EISDIR) NAME(EINVAL) NAME(EFBIG) NAME(ENOSPC)
    NAME(ESPIPE) NAME(EROFS) NAME(ENOSYS) NAME(EOVERFLOW) NAME(ETXTBSY)
#ifdef EDQUOT
    NAME(EDQUOT)
#endif
#undef NAME
    /* EOPNOTSUPP is ENOTSUP on Linux; Node calls it ENOTSUP. */
    case ENOTSUP:
      return "ENOTSUP";
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
      return "ENOTSUP";
#endif
    default:
      return "EUNKNOWN";
  }
}

napi_value qcow2_throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  char message[200];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error, value;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok || napi_create_error(env, code, msg, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), message);
    return NULL;
  }
  if (napi_create_int32(env, -err, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok) napi_set_named_property(env, error, "syscall", value);
  napi_throw(env, error);
  return NULL;
}
