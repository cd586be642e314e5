#!/usr/bin/env bash
# All set-up on a fresh Debian 12 machine (as root, Node 20): QEMU's tools, then the npm packages
# (`npm ci` also builds dist/ through the `prepare` script). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v qemu-io >/dev/null 2>&1 || need+=(qemu-utils)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq qemu-utils >/dev/null
fi
npm ci --no-audit --no-fund
