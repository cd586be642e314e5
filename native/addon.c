/*
 * The qcow2 native addon: the few system calls Node has no binding for.
 *
 *   seekData / seekHole   lseek(2) SEEK_DATA / SEEK_HOLE, for `qcow2 map` (seek.c)
 *   fallocate             fallocate(2): punch holes, zero ranges (fallocate.c)
 *
 * System call failures become Errors like Node's fs errors (errors.c).
 *
 * Loaded by src/io/native.ts.
 */
#include "addon.h"

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"seekData", NULL, qcow2_seek_data, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekHole", NULL, qcow2_seek_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fallocate", NULL, qcow2_fallocate, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  qcow2_fallocate_constants(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
