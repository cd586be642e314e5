#!/usr/bin/env bash
# Prepares what test/support/vm.ts boots: Debian 12's Linux 6.12 kernel (it has ublk_drv, nbd and
# loop as modules; the host's own kernel may have none of them), unpacked but never installed, plus
# a small initramfs base (static busybox and the 9p/overlay modules), into a cache directory outside
# the clone: $QCOW2_VM_DIR, default /var/cache/qcow2-vm. Repeated clones reuse it.
#
#   $QCOW2_VM_DIR/env                       what vm.ts reads (KEY=value lines, also sourceable)
#   $QCOW2_VM_DIR/<kv>/root/                the linux-image package, dpkg -x'ed, depmod'ed
#   $QCOW2_VM_DIR/<kv>/vmlinux              the uncompressed kernel (boots faster under TCG)
#   $QCOW2_VM_DIR/<kv>/initrd-base.cpio     busybox + modules; vm.ts appends test/vm/init per boot
#   $QCOW2_VM_DIR/<kv>/include/linux/ublk_cmd.h   the kernel's ublk UAPI header (from linux-headers-*-common)
#
# Needs root (apt). Safe to run again: a complete cache is left alone, and apt is only asked for
# what is missing (`apt-get update` only then). Only this script downloads; test runs never do.
# QCOW2_VM_KERNEL=6.12.N+deb12-amd64 picks a kernel instead of the newest one apt knows.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
D=${QCOW2_VM_DIR:-/var/cache/qcow2-vm}
FORMAT=1 # bump when the cache layout or the initramfs base changes

log() { echo "vm setup: $*" >&2; }
export DEBIAN_FRONTEND=noninteractive
updated=
apt_update() { [ -n "$updated" ] || { apt-get update -qq; updated=1; }; }

# --- host tools -----------------------------------------------------------------------------
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
have depmod || need+=(kmod)
have xz || need+=(xz-utils)
have zstd || need+=(zstd)
# The initramfs needs a static busybox (the dynamic `busybox` package would need its libraries).
[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$D"
exec 9>"$D/.lock"
flock 9 # one setup at a time per cache

# The block drivers the guest tests load with modprobe (from the kernel's own modules directory,
# bind-mounted at /lib/modules/$(uname -r) inside the guest).
GUEST_MODULES="ublk_drv nbd loop"
guest_modules_present() { # MODULES_DIR
  local m
  for m in $GUEST_MODULES; do
    grep -qE "(^|/)$m\.ko(\.xz|\.zst|\.gz)?:" "$1/modules.dep" 2>/dev/null || return 1
  done
}

# --- is the cache already complete? ----------------------------------------------------------
complete() {
  [ -f "$D/env" ] || return 1
  local fmt kv
  fmt=$(sed -n 's/^QCOW2_VM_FORMAT=//p' "$D/env")
  kv=$(sed -n 's/^QCOW2_VM_KERNEL_VERSION=//p' "$D/env")
  [ "$fmt" = "$FORMAT" ] && [ -n "$kv" ] || return 1
  [ -z "${QCOW2_VM_KERNEL:-}" ] || [ "$QCOW2_VM_KERNEL" = "$kv" ] || return 1
  guest_modules_present "$D/$kv/root/lib/modules/$kv" || return 1
  local f
  for f in "$D/$kv/vmlinux" "$D/$kv/initrd-base.cpio" "$D/$kv/include/linux/ublk_cmd.h" \
    "$D/$kv/root/lib/modules/$kv/modules.dep.bin"; do
    [ -s "$f" ] || return 1
  done
}
if complete; then
  log "cache complete: $D ($(sed -n 's/^QCOW2_VM_KERNEL_VERSION=//p' "$D/env"))"
  exit 0
fi

# --- which kernel -----------------------------------------------------------------------------
newest_kernel() {
  apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' 2>/dev/null |
    cut -d' ' -f1 | sed 's/^linux-image-//; s/-unsigned$//' | sort -V | tail -n1
}
KV=${QCOW2_VM_KERNEL:-}
if [ -z "$KV" ]; then
  KV=$(newest_kernel)
  [ -n "$KV" ] || { apt_update; KV=$(newest_kernel); }
  [ -n "$KV" ] || { log "apt knows no linux-image-6.12.*+deb12-amd64-unsigned (bookworm-security in sources?)"; exit 1; }
fi
ABI=${KV%-amd64} # 6.12.N+deb12: the linux-headers-*-common package is named after it
K=$D/$KV
log "kernel $KV into $K"
mkdir -p "$K/debs"
id _apt >/dev/null 2>&1 && chown _apt "$K/debs" # apt-get download runs as _apt

# apt-get download PKG into $K/debs (once), with `apt-get update` if apt's lists are too old.
download() {
  local pkg=$1
  ls "$K/debs/${pkg}"_*.deb >/dev/null 2>&1 && return 0
  (cd "$K/debs" && apt-get download -qq "$pkg") || { apt_update; (cd "$K/debs" && apt-get download -qq "$pkg"); }
}

# --- the kernel package: unpack, depmod -------------------------------------------------------
if [ ! -s "$K/root/lib/modules/$KV/modules.dep.bin" ]; then
  download "linux-image-$KV-unsigned"
  rm -rf "$K/root.tmp"
  dpkg -x "$K/debs/linux-image-${KV}-unsigned"_*.deb "$K/root.tmp"
  depmod -b "$K/root.tmp" "$KV"
  rm -rf "$K/root" && mv "$K/root.tmp" "$K/root"
  rm -f "$K/debs/linux-image-${KV}-unsigned"_*.deb # 100 MB, and everything needed is unpacked
fi
guest_modules_present "$K/root/lib/modules/$KV" || { log "$KV lacks one of the modules $GUEST_MODULES"; exit 1; }

# --- vmlinux: the ELF inside bzImage, booted through its PVH entry ------------------------------
if [ ! -s "$K/vmlinux" ]; then
  node "$HERE/extract-vmlinux.mjs" "$K/root/boot/vmlinuz-$KV" "$K/vmlinux.tmp"
  mv "$K/vmlinux.tmp" "$K/vmlinux"
fi

# --- initramfs base: busybox, the modules for a 9p root with an overlay, their load order ------
if [ ! -s "$K/initrd-base.cpio" ]; then
  M=$K/root/lib/modules/$KV
  R=$(mktemp -d)
  trap 'rm -rf "$R"' EXIT
  mkdir -p "$R/bin" "$R/m"
  cp /bin/busybox "$R/bin/busybox"
  : >"$R/m/order"
  # modules.dep lists each module's dependencies, all of them, the one to load first last.
  for mod in 9pnet_virtio 9p overlay; do
    line=$(grep -E "(^|/)$mod\.ko(\.xz|\.zst|\.gz)?:" "$M/modules.dep") || { log "no module $mod"; exit 1; }
    path=${line%%:*}
    deps=${line#*:}
    for p in $(printf '%s\n' $deps | tac) "$path"; do
      [ -n "$p" ] || continue
      name=$(basename "$p"); name=${name%%.ko*}
      grep -qx "$name" "$R/m/order" && continue
      case $p in
        *.xz) xz -dc "$M/$p" >"$R/m/$name.ko" ;;
        *.zst) zstd -qdc "$M/$p" >"$R/m/$name.ko" ;;
        *.gz) gzip -dc "$M/$p" >"$R/m/$name.ko" ;;
        *) cp "$M/$p" "$R/m/$name.ko" ;;
      esac
      echo "$name" >>"$R/m/order"
    done
  done
  # No /init here: test/support/vm.ts appends the checkout's test/vm/init as a second cpio archive
  # at every boot, so editing it needs no new setup.
  (cd "$R" && find . -mindepth 1 | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null) >"$K/initrd-base.cpio.tmp"
  mv "$K/initrd-base.cpio.tmp" "$K/initrd-base.cpio"
  log "initramfs base: $(tr '\n' ' ' <"$R/m/order")($(du -k "$K/initrd-base.cpio" | cut -f1) KiB)"
fi

# --- ublk's UAPI header, for native code that talks to /dev/ublk-control ------------------------
if [ ! -s "$K/include/linux/ublk_cmd.h" ]; then
  download "linux-headers-$ABI-common"
  mkdir -p "$K/include/linux"
  dpkg-deb --fsys-tarfile "$K/debs/linux-headers-${ABI}-common"_*.deb |
    tar -xO "./usr/src/linux-headers-$ABI-common/include/uapi/linux/ublk_cmd.h" >"$K/include/linux/ublk_cmd.h.tmp"
  [ -s "$K/include/linux/ublk_cmd.h.tmp" ] || { log "ublk_cmd.h not found in linux-headers-$ABI-common"; exit 1; }
  mv "$K/include/linux/ublk_cmd.h.tmp" "$K/include/linux/ublk_cmd.h"
  rm -f "$K/debs/linux-headers-${ABI}-common"_*.deb
fi
rmdir "$K/debs" 2>/dev/null || true

# --- the env file, last: its presence means the cache is complete ------------------------------
cat >"$D/env.tmp" <<EOF
QCOW2_VM_FORMAT=$FORMAT
QCOW2_VM_KERNEL_VERSION=$KV
QCOW2_VM_VMLINUX=$K/vmlinux
QCOW2_VM_INITRD_BASE=$K/initrd-base.cpio
QCOW2_VM_MODULES=$K/root/lib/modules/$KV
QCOW2_VM_UAPI_INCLUDE=$K/include
QCOW2_VM_UBLK_CMD_H=$K/include/linux/ublk_cmd.h
EOF
mv "$D/env.tmp" "$D/env"
log "ready: $D/env"
