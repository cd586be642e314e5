{
  "targets": [
    {
      "target_name": "qcow2_native",
      "sources": ["addon.c", "errors.c", "seek.c", "fallocate.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ],
  "conditions": [
    ["OS=='linux'", {
      "targets": [
        {
          "target_name": "qcow2_ublk",
          "sources": ["ublk_addon.c", "ublk_queue.c", "ublk_uring.c"],
          "cflags": ["-O2", "-Wall", "-Wextra", "-pthread"],
          "ldflags": ["-pthread"],
          "defines": ["NAPI_VERSION=8"]
        }
      ]
    }]
  ]
}
