/* Shared by the parts of the ublk addon (ublk_addon.c, ublk_queue.c). */
#ifndef QCOW2_UBLK_ADDON_H
#define QCOW2_UBLK_ADDON_H
#include <node_api.h>

/* An Error as Node's fs errors look: code (errno name), errno (negative), syscall, "<what>: <strerror>". */
napi_value ublk_errno_error(napi_env env, int err, const char *syscall, const char *what);
/* Throws ublk_errno_error(); returns NULL for the caller to return. */
napi_value ublk_throw_errno(napi_env env, int err, const char *syscall, const char *what);

napi_value ublk_open_queues(napi_env env, napi_callback_info info);
napi_value ublk_complete(napi_env env, napi_callback_info info);
napi_value ublk_complete_many(napi_env env, napi_callback_info info);
napi_value ublk_stop_queues(napi_env env, napi_callback_info info);
napi_value ublk_close_queues(napi_env env, napi_callback_info info);

#endif
