{
  "targets": [
    {
      "target_name": "qcow2_native",
      "sources": ["addon.c", "errors.c", "seek.c", "fallocate.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
