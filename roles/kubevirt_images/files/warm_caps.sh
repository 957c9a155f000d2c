#!/bin/sh
# warm_caps.sh ROOTFS SRC DEST
# libvirt's QEMU capability cache for the launcher image (kubevirt_runtime/launcher/caps_cache.py): the
# launcher root filesystem's own libvirtd and QEMU probe in a throwaway overlay (ROOTFS is never written), with
# /dev/kvm hidden (variant tcg) and, when this host has one, visible (variant kvm). The result becomes the layer
# tree DEST/usr/share/kubevirt-ops/qemu-capabilities/<variant>/*.xml. SRC is the checkout's src directory.
set -eu
rootfs=$1 src=$2 dest=$3
[ -x "$rootfs/usr/sbin/libvirtd" ] || { echo "warm_caps.sh: no libvirtd in $rootfs" >&2; exit 2; }
case "$dest" in /*/*) ;; *) echo "warm_caps.sh: refusing DEST '$dest'" >&2; exit 2;; esac
work=$(mktemp -d /tmp/kvo-warm-caps-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/work" "$work/root" "$work/out"
# Everything mounted here lives in the private mount namespace and goes away with it; the inner script gets
# its values as arguments, hence the single quotes.
# shellcheck disable=SC2016
unshare --mount --propagation private sh -eu -c '
  rootfs=$1 src=$2 work=$3 root=$3/root
  mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/work" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/tmp"
  mount -t tmpfs tmpfs "$root/run"
  mkdir -p "$root/opt/kvo-src" "$root/out"
  mount --bind "$src" "$root/opt/kvo-src"
  mount --bind "$work/out" "$root/out"
  warm() { chroot "$root" env PYTHONPATH=/opt/kvo-src python3 -m kubevirt_runtime.launcher.caps_cache warm "$@"; }
  warm --no-kvm /out/tcg
  if [ -e /dev/kvm ]; then warm /out/kvm; fi
' warm_caps "$rootfs" "$src" "$work"
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/usr/share/kubevirt-ops"
cp -r "$work/out" "$dest.tmp/usr/share/kubevirt-ops/qemu-capabilities"
chmod -R a+rX "$dest.tmp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
