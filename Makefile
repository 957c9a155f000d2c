# Every target bootstraps what it needs: .venv (pinned Python deps), OS packages, the Kubernetes build.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.stamp
ANSIBLE_PLAYBOOK := $(VENV)/bin/ansible-playbook
PYTEST := $(VENV)/bin/pytest
INVENTORY ?= inventories/local
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv ui browser cluster-up cluster-down cluster-sync binaries node-packages test test-unit test-integration test-e2e test-migration test-ha bench lint molecule

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml hack/bootstrap.sh hack/ansible-test-sanity.sh
	hack/bootstrap.sh

# The web console's frontend (npm ci + esbuild from the lockfile) into src/kubevirt_runtime/ui/static, which
# the wheel (and so the images) and `virtctl ui` serve; skipped when nothing changed.
ui:
	hack/build-ui.sh

# Debian's Chromium for the browser tests.
browser:
	hack/install-browser.sh

# NODES=N (default 1): node02..nodeNN are network namespaces on this host, each a node of its own reached over SSH;
# CONTROL_PLANE_NODES=M: the first M nodes run etcd and the control plane (HAProxy in front). Both are read by
# the inventory (inventories/local/local_cluster.yml, plugin kubevirt.ops.local_cluster); later runs without
# them keep the cluster's shape until cluster-down.
cluster-up: $(STAMP) ui
	$(ANSIBLE_PLAYBOOK) -i $(INVENTORY) playbooks/cluster-up.yml

cluster-down: $(STAMP)
	$(ANSIBLE_PLAYBOOK) -i $(INVENTORY) playbooks/cluster-down.yml

cluster-sync: $(STAMP) ui
	$(ANSIBLE_PLAYBOOK) -i $(INVENTORY) playbooks/cluster-sync.yml

# The upstream binaries (build or download), cached outside the clone; the integration tests need them.
binaries: $(STAMP)
	$(ANSIBLE_PLAYBOOK) -i $(INVENTORY) playbooks/binaries.yml

# Unit tests first (seconds), then what needs the upstream binaries and libvirt/QEMU on this host,
# then the full cluster (brought up and, if the tests made it, torn down again).
test: test-unit node-packages binaries test-integration test-e2e

test-unit: $(STAMP) ui
	$(PYTEST) -q --timeout 120 tests/unit
	node --test src/kubevirt_runtime/ui/frontend/test/

# libvirt + QEMU (TCG) on this host for the launcher/handler integration tests.
node-packages:
	hack/install-node-packages.sh

test-integration: $(STAMP) node-packages binaries
	$(PYTEST) -q tests/integration

# The session's cluster has two nodes (E2E_NODES), so VMs migrate between them.
test-e2e: $(STAMP) ui browser
	$(PYTEST) -q tests/e2e

test-migration: $(STAMP) ui browser
	$(PYTEST) -q tests/e2e/test_migration.py

# Other cluster shapes, outside make test (each is made and removed; the default cluster is restored): three
# control-plane nodes with one kube-apiserver stopped, and inventories/sample installed over SSH onto network
# namespaces. Hold the cluster lock.
test-ha: $(STAMP) ui node-packages binaries
	$(PYTEST) -q tests/ha

bench: $(STAMP) binaries
	$(VENV)/bin/python -m bench

# ruff (pyproject.toml), ansible-lint --profile production (.ansible-lint), ansible-test sanity on the built
# collection (tests/sanity/ignore-*.txt); offline once make venv has filled the sanity wheelhouse.
lint: $(STAMP)
	$(VENV)/bin/ruff check src plugins tests bench
	$(VENV)/bin/ansible-lint
	hack/ansible-test-sanity.sh

# molecule test (molecule/default): reuses the cluster that is up and keeps it, or makes one and removes it.
# MOLECULE_GLOB: this collection keeps its scenario in molecule/, not in extensions/molecule/.
molecule: $(STAMP)
	MOLECULE_GLOB='molecule/*/molecule.yml' $(VENV)/bin/molecule test
