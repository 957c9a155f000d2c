#!/usr/bin/env bash
# virtctl against this cluster (cluster name from CLUSTER_NAME, default kubevirt-ops), like hack/kubectl.sh.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=${CLUSTER_NAME:-kubevirt-ops}
state=${XDG_STATE_HOME:-$HOME/.local/state}/kubevirt-ops/$cluster
kubeconfig=$state/admin.kubeconfig
virtctl=$repo/.venv/bin/virtctl
if [ ! -f "$kubeconfig" ]; then
  echo "no cluster '$cluster' here ($kubeconfig is missing): run 'make cluster-up' first" >&2
  exit 1
fi
if [ ! -x "$virtctl" ] || ! "$repo/.venv/bin/python" -c 'import kubevirt_runtime.virtctl.main' 2>/dev/null; then
  echo "virtctl is not available yet (kubevirt_runtime.virtctl.main is missing; run 'make venv' once it exists)" >&2
  exit 1
fi
export KUBECONFIG=$kubeconfig
exec "$virtctl" "$@"
