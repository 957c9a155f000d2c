#!/bin/sh
# A cluster node as namespaces on this host, made and removed idempotently. Prints "changed" when it
# modified anything.
#
#   kvo-netns-node.sh bridge BRIDGE ADDRESS/PREFIX
#       the host bridge the nodes' veths join, holding this host's address on the node network
#   kvo-netns-node.sh up NAME ROOT NSDIR BRIDGE HOST_IF NODE_IF ADDRESS/PREFIX CGROUP PRIVATE_DIR...
#       network namespace NAME (ip netns) and a mount namespace NSDIR/NAME in which each PRIVATE_DIR is a
#       directory of the node's own (bind-mounted from ROOT/fs/); veth HOST_IF (on BRIDGE) <-> NODE_IF (in the
#       namespace, with ADDRESS); the node's cgroup CGROUP in every hierarchy
#   kvo-netns-node.sh sshd NAME ROOT NSDIR
#       the node's sshd (config, keys and pid file in ROOT/ssh), started inside both namespaces
#   kvo-netns-node.sh down NAME ROOT NSDIR HOST_IF CGROUP
#       stops every process of the network namespace (they are the node's: its sshd started them all),
#       removes the namespaces, the veth, the cgroups and ROOT
#   kvo-netns-node.sh bridge-down BRIDGE NSDIR
#       removes the bridge and the namespace directory once no node uses them
set -eu
action=$1
shift
changed=0

in_ns() { ip netns exec "$name" "$@"; }
is_mounted() { awk -v p="$1" '$2 == p {found=1} END {exit !found}' /proc/mounts; }
cgroup_dirs() {  # every hierarchy's directory of the node's cgroup
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "/sys/fs/cgroup$1"; return; fi
  for h in /sys/fs/cgroup/*; do
    [ -d "$h" ] && ! [ -L "$h" ] && [ "$(basename "$h")" != unified ] && echo "$h$1"
  done
}

cgroup_dirs_to_remove() {  # also the unified hierarchy of a hybrid host, where runc makes the pods' cgroups too
  cgroup_dirs "$1" || true  # its last test (the unified hierarchy it skips) may be false
  if ! [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -d /sys/fs/cgroup/unified ]; then echo "/sys/fs/cgroup/unified$1"; fi
}

own_cgroup() {  # never the root cgroup, nor anything but one directory of our own
  case "$1" in /*/*|/) echo "refusing cgroup '$1': expected /NAME" >&2; exit 2 ;; /?*) ;; *) echo "refusing cgroup '$1'" >&2; exit 2 ;; esac
}

case "$action" in
bridge)
  bridge=$1 address=$2
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge; changed=1
  elif ! ip -d link show "$bridge" | grep -q 'bridge '; then
    echo "$bridge exists and is not a bridge (a single-node cluster is up?): run make cluster-down first" >&2
    exit 1
  fi
  if ! ip -4 addr show dev "$bridge" | grep -q "inet $address "; then ip addr add "$address" dev "$bridge"; changed=1; fi
  if ! ip link show "$bridge" | grep -q ',UP'; then ip link set "$bridge" up; changed=1; fi
  ;;

up)
  name=$1 root=$2 nsdir=$3 bridge=$4 host_if=$5 node_if=$6 address=$7 cgroup=$8
  shift 8
  own_cgroup "$cgroup"
  if ! [ -e "/run/netns/$name" ]; then ip netns add "$name"; changed=1; fi
  # a mount namespace is kept alive by a bind mount of its file, which needs a private parent mount
  mkdir -p "$nsdir"
  if ! is_mounted "$nsdir"; then mount --bind "$nsdir" "$nsdir"; mount --make-private "$nsdir"; changed=1; fi
  if ! is_mounted "$nsdir/$name"; then
    touch "$nsdir/$name"
    binds=""
    for dir in "$@"; do
      src="$root/fs/$(echo "$dir" | tr / _)"
      mkdir -p "$src" "$dir"
      binds="$binds mount --bind '$src' '$dir'; mount --make-shared '$dir';"
    done
    # slave: the host's mounts (new ones too) show inside, the node's own never leak out; each own directory is
    # also shared within the node, as a host's are, so a container's Bidirectional mount (virt-handler's
    # /var/lib/kubelet/pods, for hotplugged disks) reaches the node and the other pods
    unshare --mount="$nsdir/$name" --propagation slave sh -c "$binds"
    changed=1
  fi
  if ! ip link show "$host_if" >/dev/null 2>&1; then
    ip link add "$host_if" type veth peer name "$node_if" netns "$name"; changed=1
  fi
  if ! ip link show "$host_if" | grep -q "master $bridge"; then ip link set "$host_if" master "$bridge"; changed=1; fi
  if ! ip link show "$host_if" | grep -q ',UP'; then ip link set "$host_if" up; changed=1; fi
  if ! in_ns ip link show lo | grep -q ',UP'; then in_ns ip link set lo up; changed=1; fi
  if ! in_ns ip -4 addr show dev "$node_if" | grep -q "inet $address "; then
    in_ns ip addr add "$address" dev "$node_if"; changed=1
  fi
  if ! in_ns ip link show "$node_if" | grep -q ',UP'; then in_ns ip link set "$node_if" up; changed=1; fi
  for dir in $(cgroup_dirs "$cgroup"); do
    [ -d "$dir" ] && continue
    mkdir -p "$dir"; changed=1
    case "$dir" in  # a new cpuset is empty: give it its parent's CPUs and memory nodes
      */cpuset/*) for f in cpuset.cpus cpuset.mems; do cat "$(dirname "$dir")/$f" > "$dir/$f"; done ;;
    esac
  done
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    controllers=$(sed 's/\([^ ]*\)/+\1/g' "/sys/fs/cgroup$cgroup/cgroup.controllers")
    if [ -n "$controllers" ]; then echo "$controllers" > "/sys/fs/cgroup$cgroup/cgroup.subtree_control" 2>/dev/null || true; fi
  fi
  ;;

sshd)
  name=$1 root=$2 nsdir=$3
  pidfile="$root/ssh/sshd.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
     [ "$(readlink "/proc/$(cat "$pidfile")/ns/net")" = "$(ip netns exec "$name" readlink /proc/self/ns/net)" ]; then
    :
  else
    mkdir -p /run/sshd
    nsenter --net="/run/netns/$name" --mount="$nsdir/$name" /usr/sbin/sshd -f "$root/ssh/sshd_config"
    changed=1
  fi
  ;;

down)
  name=$1 root=$2 nsdir=$3 host_if=$4 cgroup=$5
  own_cgroup "$cgroup"
  # the node's processes: those in its network namespace (daemons, shims) and those in its cgroup (pods)
  node_pids() {
    [ -e "/run/netns/$name" ] && ip netns pids "$name"
    for dir in $(cgroup_dirs "$cgroup"); do
      [ -d "$dir" ] && find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
      break
    done
  }
  pids=$(node_pids | sort -u)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086  # one pid per word
    kill -TERM $pids 2>/dev/null || true
    i=0
    while [ -n "$(node_pids)" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
    pids=$(node_pids | sort -u)
    # shellcheck disable=SC2086
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
    changed=1
  fi
  if is_mounted "$nsdir/$name"; then umount "$nsdir/$name" || umount -l "$nsdir/$name"; changed=1; fi
  if [ -e "$nsdir/$name" ]; then rm -f "$nsdir/$name"; changed=1; fi
  if [ -e "/run/netns/$name" ]; then ip netns del "$name"; changed=1; fi
  # deleting the namespace removes the veth pair a moment later: a link gone meanwhile is fine
  if ip link show "$host_if" >/dev/null 2>&1; then
    ip link del "$host_if" 2>/dev/null || ! ip link show "$host_if" >/dev/null 2>&1 || exit 1
    changed=1
  fi
  for dir in $(cgroup_dirs_to_remove "$cgroup"); do
    [ -d "$dir" ] || continue
    # killed processes leave their cgroups a moment later
    i=0
    until find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null; [ ! -d "$dir" ] || [ $i -ge 25 ]; do
      sleep 0.2; i=$((i + 1))
    done
    changed=1
  done
  # a killed process may still be writing its last files for a moment ("Directory not empty"): try again
  if [ -e "$root" ]; then
    i=0
    until rm -rf "$root" 2>/dev/null || [ $i -ge 20 ]; do sleep 0.5; i=$((i + 1)); done
    [ ! -e "$root" ] || rm -rf "$root" || exit 1
    changed=1
  fi
  ;;

bridge-down)
  bridge=$1 nsdir=$2
  if ip link show "$bridge" >/dev/null 2>&1 && [ -z "$(ip link show master "$bridge")" ]; then
    ip link del "$bridge"; changed=1
  fi
  if [ -d "$nsdir" ] && [ -z "$(ls -A "$nsdir")" ]; then
    if is_mounted "$nsdir"; then umount "$nsdir"; fi
    rmdir "$nsdir"; changed=1
  fi
  ;;

*)
  echo "usage: $0 bridge|up|sshd|down|bridge-down ..." >&2
  exit 2
  ;;
esac
if [ "$changed" = 1 ]; then echo changed; fi
