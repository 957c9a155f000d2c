#!/usr/bin/env bash
# Installs what virt-launcher / virt-handler need on this host (for tests and benchmarks):
# a libvirt daemon with the QEMU driver (virtqemud is used, no libvirtd/virtlogd needed),
# QEMU for x86 including its TCG accelerator module, qemu-img, an ISO writer for cloud-init
# NoCloud disks, and what the test guest is built from (busybox-static; the kernel package is
# downloaded and unpacked by tests/integration/guest.py, never installed).
# Idempotent: installs only what is missing, runs apt-get update only if it has to install.
set -euo pipefail

pkgs=(
  libvirt-daemon               # virtqemud + its config
  libvirt-daemon-driver-qemu   # the QEMU driver module of virtqemud
  qemu-system-x86              # qemu-system-x86_64 (carries accel-tcg-x86_64.so in Debian 12)
  qemu-utils                   # qemu-img: overlays for containerDisks, emptyDisk images
  genisoimage                  # cloud-init NoCloud ISO
  busybox-static               # test guest initramfs
  ovmf                         # EFI firmware for firmware.bootloader.efi
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-node-packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian builds QEMU's TCG accelerator as a loadable module; without it only KVM works.
tcg=$(ls /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so 2>/dev/null || true)
if [ -z "$tcg" ] && ! qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg; then
  echo "install-node-packages: QEMU has no TCG accelerator" >&2
  exit 1
fi
