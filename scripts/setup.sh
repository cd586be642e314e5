#!/usr/bin/env bash
# All set-up on a fresh Debian 12 machine (as root, Node 20): QEMU's tools, the NBD clients the
# server's tests drive (libnbd's nbdinfo/nbdcopy/nbdsh with its Python module, nbdkit, fio), then
# the npm packages (`npm ci` also builds dist/ through the `prepare` script). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-img || need+=(qemu-utils)
have qemu-io || need+=(qemu-utils)
have qemu-nbd || need+=(qemu-utils)
have nbdinfo || need+=(libnbd-bin)
have nbdcopy || need+=(libnbd-bin)
have nbdsh || need+=(libnbd-bin)
# nbdsh runs `python3 -mnbd`: Debian's module is for the system Python.
/usr/bin/python3 -c 'import nbd' >/dev/null 2>&1 || need+=(python3-libnbd)
have nbdkit || need+=(nbdkit)
have fio || need+=(fio)
have openssl || need+=(openssl) # test certificates (test/nbd/tls.test.ts)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2046 # one package name per word, duplicates removed
  apt-get install -y -qq $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
npm ci --no-audit --no-fund
bash test/vm/setup.sh # the VM the ublk tests boot (test/support/vm.ts): kernel, initramfs, into /var/cache/qcow2-vm
