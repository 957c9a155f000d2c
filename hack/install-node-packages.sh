#!/usr/bin/env bash
# Installs what virt-launcher / virt-handler need on this host (for tests and benchmarks):
# libvirtd with the QEMU driver (Debian 12 has no modular virtqemud; virtlogd is not needed),
# QEMU for x86 including its TCG accelerator module, qemu-img, an ISO writer for cloud-init
# NoCloud disks, OVMF for EFI guests, and what virt-handler wires pod networks with (iproute2, nftables).
# The test guest's kernel and busybox are downloaded and unpacked by tests/integration/guest.py
# (apt-get download + dpkg-deb), never installed.
# Idempotent: installs only what is missing, runs apt-get update only if it has to install.
set -euo pipefail

pkgs=(
  libvirt-daemon               # /usr/sbin/libvirtd
  libvirt-daemon-driver-qemu   # its QEMU driver module (the only one the launcher loads)
  qemu-system-x86              # qemu-system-x86_64
  qemu-system-common           # accel-tcg-x86_64.so: Debian builds TCG as a loadable module
  qemu-utils                   # qemu-img: overlays for containerDisks, emptyDisk images
  genisoimage                  # cloud-init, config map, secret, downward API and service account ISOs
  swtpm                        # devices.tpm: libvirt runs swtpm for the emulated TPM 2.0
  swtpm-tools                  # swtpm_setup, which libvirt calls to create the TPM's state
  ovmf                         # EFI firmware for firmware.bootloader.efi
  iproute2                     # ip: virt-handler's links, addresses and routes in a pod's namespace
  nftables                     # nft: the masquerade binding's NAT
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
