#!/usr/bin/env bash
# A shell, or one command, on a node of the local cluster (as kubevirtci's cli.sh ssh):
#   hack/cli.sh ssh node02              an interactive shell on node02
#   hack/cli.sh ssh node02 -- CMD...    run CMD there
#   hack/cli.sh node02 -- CMD...        the same
#   hack/cli.sh nodes                   the nodes and their addresses
# node01 is this host (a local shell); node02.. are the netns nodes, reached over SSH with the cluster's key,
# as the playbooks reach them. Nodes, addresses and the key come from the inventory (INVENTORY, default
# inventories/local; cluster name from CLUSTER_NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=${INVENTORY:-inventories/local}
export ANSIBLE_CONFIG=$PWD/ansible.cfg
[ -x .venv/bin/ansible-inventory ] || make -s venv >&2

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

hostvars() {  # the inventory's variables of node $1 as JSON, or nothing when there is no such node
  .venv/bin/ansible-inventory -i "$inventory" --host "$1" 2>/dev/null || true
}

[ $# -ge 1 ] || usage
if [ "$1" = nodes ]; then
  .venv/bin/ansible-inventory -i "$inventory" --list 2>/dev/null | python3 -c '
import json, sys
def value(hv, key):  # --list wraps values the inventory plugin set as {"__ansible_unsafe": value}
    v = hv.get(key)
    return v.get("__ansible_unsafe") if isinstance(v, dict) else v
for host, hv in sorted(json.load(sys.stdin)["_meta"]["hostvars"].items()):
    where = "this host" if value(hv, "ansible_connection") == "local" else "ssh root@%s" % value(hv, "ansible_host")
    print(host, value(hv, "node_ip"), where, sep="\t")'
  exit 0
fi
[ "$1" = ssh ] && shift
[ $# -ge 1 ] || usage
node=$1
shift
if [ $# -gt 0 ]; then
  [ "$1" = -- ] || usage
  shift
fi

vars=$(hostvars "$node")
if [ -z "$vars" ]; then
  echo "no node '$node' in the cluster; its nodes are:" >&2
  "$0" nodes >&2
  exit 1
fi
field() { python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1]) or "")' "$1" <<<"$vars"; }

if [ "$(field ansible_connection)" = local ]; then
  if [ $# -eq 0 ]; then exec "${SHELL:-/bin/bash}" -l; fi
  exec "$@"
fi
key=$(field ansible_ssh_private_key_file)
# ssh joins its arguments into one line for the remote shell: quote each, so CMD's words arrive as they were given
remote=()
[ $# -eq 0 ] || remote=("$(printf '%q ' "$@")")
# shellcheck disable=SC2046  # the inventory's ssh options, one word each
exec ssh -i "$key" $(field ansible_ssh_common_args) $([ $# -eq 0 ] && echo -t) "$(field ansible_user)@$(field ansible_host)" \
  "${remote[@]}"
