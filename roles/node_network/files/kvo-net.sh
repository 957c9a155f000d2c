#!/bin/sh
# Idempotent node network setup for one cluster. Prints "changed" when it modified anything.
# usage: kvo-net.sh up|down NODE_IF NODE_IP NODE_CIDR SVC_IF SVC_CIDR CHAIN "CIDR..." OWN_IF_PREFIX
#        kvo-net.sh routes|routes-down POD_CIDR=NODE_IP...   (the other nodes' pod networks via their node IPs)
set -eu
changed=0
ipt() { iptables -w 5 "$@"; }

if [ "$1" = routes ] || [ "$1" = routes-down ]; then
  action=$1
  shift
  for peer in "$@"; do
    cidr=${peer%%=*} via=${peer#*=}
    if [ "$action" = routes ]; then
      if ! ip route show "$cidr" | grep -q "via $via "; then ip route replace "$cidr" via "$via"; changed=1; fi
    elif ip route show "$cidr" | grep -q "via $via "; then
      ip route del "$cidr" via "$via"; changed=1
    fi
  done
  if [ "$changed" = 1 ]; then echo changed; fi
  exit 0
fi
action=$1 node_if=$2 node_ip=$3 node_cidr=$4 svc_if=$5 svc_cidr=$6 chain=$7 cidrs=$8 own_prefix=$9

link_up() {  # name: a device that swallows what is sent to it (dummy; ifb where the kernel has no dummy)
  if ! ip link show "$1" >/dev/null 2>&1; then
    ip link add "$1" type dummy 2>/dev/null || ip link add "$1" type ifb; changed=1
  fi
  if ! ip link show "$1" | grep -q ',UP'; then ip link set "$1" up; changed=1; fi
}

if [ "$action" = up ]; then
  if [ "$node_if" != "-" ]; then
    link_up "$node_if"
    prefix=${node_cidr#*/}
    if ! ip -4 addr show dev "$node_if" | grep -q "inet $node_ip/$prefix "; then
      ip addr add "$node_ip/$prefix" dev "$node_if"; changed=1
    fi
  fi
  if [ "$svc_if" != "-" ]; then
    link_up "$svc_if"
    if ! ip route show "$svc_cidr" dev "$svc_if" | grep -q .; then
      ip route replace "$svc_cidr" dev "$svc_if"; changed=1
    fi
  fi
  if [ "$chain" != "-" ]; then
    if ! ipt -L "$chain" -n >/dev/null 2>&1; then ipt -N "$chain"; changed=1; fi
    want=$(mktemp)
    { echo "-o lo -j RETURN"; echo "-o ${own_prefix}+ -j RETURN"
      for c in $cidrs; do echo "-s $c -j DROP"; echo "-d $c -j DROP"; done; } > "$want"
    have=$(mktemp)
    ipt -S "$chain" | sed -n "s/^-A $chain //p" > "$have"
    if ! cmp -s "$want" "$have"; then
      ipt -F "$chain"
      while read -r rule; do eval ipt -A "$chain" "$rule"; done < "$want"
      changed=1
    fi
    rm -f "$want" "$have"
    for parent in FORWARD OUTPUT; do
      if ! ipt -C "$parent" -j "$chain" 2>/dev/null; then ipt -I "$parent" 1 -j "$chain"; changed=1; fi
    done
  fi
else
  for parent in FORWARD OUTPUT; do
    while ipt -C "$parent" -j "$chain" 2>/dev/null; do ipt -D "$parent" -j "$chain"; changed=1; done
  done
  if ipt -L "$chain" -n >/dev/null 2>&1; then ipt -F "$chain"; ipt -X "$chain"; changed=1; fi
  for dev in "$svc_if" "$node_if"; do
    if [ "$dev" != "-" ] && ip link show "$dev" >/dev/null 2>&1; then ip link del "$dev"; changed=1; fi
  done
fi
if [ "$changed" = 1 ]; then echo changed; fi
