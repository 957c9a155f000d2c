#!/bin/sh
# Remove what a kubevirt-ops cluster left on this node once its daemons are stopped, except
# containerd, which must still run for the container cleanup. Prints "changed" when it removed
# anything. Only this cluster's paths, devices and chains are touched.
# usage: kvo-reset-node.sh stage CONTAINERD_SOCKET CONTAINERD_STATE KUBELET_ROOT POD_BRIDGE CNI_NETWORK [CGROUP_ROOT]
set -u
stage=$1 sock=$2 cstate=$3 kubelet_root=$4 bridge=$5 cni_network=$6 cgroup_root=${7:-/}
changed=0
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

if [ "$stage" = containers ] && [ -S "$sock" ]; then
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill -s SIGKILL "$task" >/dev/null 2>&1
    ctr_ tasks delete -f "$task" >/dev/null 2>&1 && changed=1
  done
  for c in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers delete "$c" >/dev/null 2>&1 && changed=1
  done
fi

if [ "$stage" = host ]; then
  # Pod network namespaces (containerd keeps them under its state dir): removing them removes
  # the pods' veth pairs.
  for ns in "$cstate"/io.containerd.grpc.v1.cri/netns/*; do
    [ -e "$ns" ] || continue
    umount "$ns" 2>/dev/null; rm -f "$ns" && changed=1
  done
  # Mounts below our directories, deepest first.
  for prefix in "$kubelet_root" "$cstate" /var/lib/kubevirt-ops; do
    # shellcheck disable=SC2013  # /proc/mounts escapes blanks (\040): one word per mount point
    for m in $(awk -v p="$prefix" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do
      umount "$m" 2>/dev/null || umount -l "$m"; changed=1
    done
  done
  if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge"; changed=1; fi
  # portmap's rules carry the network's name in their comments.
  for table in nat filter mangle; do
    rules=$(iptables-save -t "$table" 2>/dev/null | grep -- "\"$cni_network\"" | grep '^-A' || true)
    if [ -n "$rules" ]; then
      echo "$rules" | sed 's/^-A/-D/' | while read -r rule; do eval iptables -w 5 -t "$table" "$rule"; done
      changed=1
    fi
  done
  # Empty portmap chains no rule jumps to any more.
  for table in nat filter; do
    for chain in $(iptables-save -t "$table" 2>/dev/null | sed -n 's/^:\(CNI-[A-Za-z0-9-]*\) .*/\1/p'); do
      if ! iptables-save -t "$table" | grep -q -- "-j $chain\b"; then
        iptables -w 5 -t "$table" -F "$chain" && iptables -w 5 -t "$table" -X "$chain" && changed=1
      fi
    done
  done
  # The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and whatever
  # kube-proxy --cleanup left: first the jumps from the built-in chains, then the chains.
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      save=$("$ipt-save" -t "$table" 2>/dev/null) || continue
      echo "$save" | grep -E '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A/-D/' | while read -r rule; do
        eval "$ipt" -w 5 -t "$table" "$rule" && echo x
      done | grep -q x && changed=1
      chains=$(echo "$save" | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p')
      for chain in $chains; do "$ipt" -w 5 -t "$table" -F "$chain"; done
      for chain in $chains; do "$ipt" -w 5 -t "$table" -X "$chain" && changed=1; done
    done
  done
  # Pod cgroups the kubelet made (cgroupfs driver), below the kubelet's cgroup root.
  for hierarchy in /sys/fs/cgroup/*; do
    base="$hierarchy${cgroup_root%/}"
    [ -d "$base/kubepods" ] || [ -d "$base/kubepods.slice" ] || continue
    find "$base/kubepods" "$base/kubepods.slice" -depth -type d -exec rmdir {} + 2>/dev/null
    changed=1
  done
fi
if [ "$changed" = 1 ]; then echo changed; fi
