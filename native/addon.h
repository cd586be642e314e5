/* Shared by the parts of the qcow2 native addon (addon.c, errors.c, seek.c, fallocate.c). */
#ifndef QCOW2_ADDON_H
#define QCOW2_ADDON_H
#include <node_api.h>

/*
 * Throws an Error for a failed system call: `code` is the errno name as Node spells it (ENOSPC,
 * ENOTSUP, ...; "EUNKNOWN" for a rare one), `errno` the negated number as in Node's fs errors,
 * `syscall` the call, and the message "<what>: <strerror>". Returns NULL for the caller to return.
 */
napi_value qcow2_throw_errno(napi_env env, int err, const char *syscall, const char *what); /* errors.c */

napi_value qcow2_seek_data(napi_env env, napi_callback_info info);
napi_value qcow2_seek_hole(napi_env env, napi_callback_info info);
napi_value qcow2_fallocate(napi_env env, napi_callback_info info);
/* Adds FALLOC_FL_* constants (this system's values) to the exports. */
void qcow2_fallocate_constants(napi_env env, napi_value exports);

#endif
