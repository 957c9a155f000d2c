#!/usr/bin/env bash
# kubectl against this cluster (cluster name from CLUSTER_NAME, default kubevirt-ops).
set -euo pipefail
cluster=${CLUSTER_NAME:-kubevirt-ops}
state=${XDG_STATE_HOME:-$HOME/.local/state}/kubevirt-ops/$cluster
kubeconfig=$state/admin.kubeconfig
kubectl=$state/bin/kubectl
if [ ! -f "$kubeconfig" ]; then
  echo "no cluster '$cluster' here ($kubeconfig is missing): run 'make cluster-up' first" >&2
  exit 1
fi
exec "$kubectl" --kubeconfig "$kubeconfig" "$@"
