{
  "targets": [
    {
      "target_name": "qcow2_seek",
      "sources": ["seek.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
