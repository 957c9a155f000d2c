"""Runs last in the e2e session: cluster-down removes everything the session's cluster-up made."""
import pytest

from tests.e2e import cluster as c


def test_cluster_down_leaves_nothing_behind(cluster):
    if not cluster.created_here:
        pytest.skip("the cluster was already up before the tests: a test never tears down a cluster it did not create")
    c.run_playbook("cluster-down")
    after = c.host_traces()
    for kind, before in cluster.traces_before.items():
        assert after[kind] <= before, f"{kind} left behind: {sorted(after[kind] - before)}"
    assert not c.STATE_DIR.exists()


def test_cluster_down_twice_is_safe(cluster):
    if not cluster.created_here:
        pytest.skip("the cluster was already up before the tests: a test never tears down a cluster it did not create")
    _, output, _ = c.run_playbook("cluster-down")
    assert c.recap_changed(output) == 0
