#!/bin/sh
# mkrootfs.sh DEST SUITE MIRROR DEB_CACHE PACKAGES TRIM_PATHS
# A Debian minbase root filesystem at DEST (built beside it, renamed into place when complete),
# with PACKAGES (comma separated) included, then TRIM_PATHS (space separated, relative) removed.
# Downloaded .debs are kept in DEB_CACHE so a re-run with another package list downloads less.
set -eu
dest=$1 suite=$2 mirror=$3 debs=$4 packages=$5 trim=$6
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$debs" "$tmp"
debootstrap --variant=minbase --cache-dir="$debs" ${packages:+--include="$packages"} \
  "$suite" "$tmp" "$mirror" >"$dest.log" 2>&1 || { tail -30 "$dest.log" >&2; exit 1; }
for p in $trim; do rm -rf "${tmp:?}/$p"; done
mkdir -p "$tmp/var/log" "$tmp/var/cache/apt/archives/partial" "$tmp/var/lib/apt/lists/partial"
# /dev, /proc, /sys, /run and /tmp come from the container runtime.
find "$tmp/dev" "$tmp/proc" "$tmp/sys" "$tmp/run" "$tmp/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
# The image's own apt sources point at the mirror it was built from.
echo "deb $mirror $suite main" >"$tmp/etc/apt/sources.list"
rm -rf "$dest"
mv "$tmp" "$dest"
