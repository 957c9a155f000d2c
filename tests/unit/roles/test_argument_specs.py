"""Every role checks its variables before its tasks run (meta/argument_specs.yml): each knob that
defaults/main.yml documents (with its default) has an option with a description and a type there."""

import pytest
import yaml

from tests.conftest import REPO

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
# Computed per host from inventory groups a deploy onto an existing cluster does not have (see the spec's header).
LEFT_OUT = {"cluster_defaults": {"node_ip", "node_pod_cidr", "kube_apiserver_endpoint"}}


def _load(role, name):
    path = REPO / "roles" / role / name
    return yaml.safe_load(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("role", ROLES)
def test_spec_documents_every_default(role):
    specs = _load(role, "meta/argument_specs.yml")
    assert specs, f"roles/{role}/meta/argument_specs.yml is missing"
    options = specs["argument_specs"]["main"]["options"] or {}
    defaults = _load(role, "defaults/main.yml") or {}
    assert set(options) == set(defaults) - LEFT_OUT.get(role, set()), "spec and defaults/main.yml differ"
    for name, option in options.items():
        assert option.get("description"), f"{name} has no description"
        assert option.get("type"), f"{name} has no type"
        # defaults/main.yml is the one place a default lives (a copy here would drift).
        assert "default" not in option, f"{name}: its default belongs in defaults/main.yml"


@pytest.mark.parametrize("role", [r for r in ROLES if r != "cluster_defaults"])
def test_role_variables_carry_the_role_prefix(role):
    """Shared settings live in cluster_defaults; everything else is named after its role."""
    specs = _load(role, "meta/argument_specs.yml")["argument_specs"]
    for entry in specs.values():
        for name in entry.get("options") or {}:
            assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
