"""make test-ha: cluster shapes other than the e2e session's, each made and removed here (the cluster lock
must be held, as for any cluster command). The default single-node cluster is restored at the end when it was
up before."""
import pytest

from tests.e2e import cluster as c


@pytest.fixture(scope="session", autouse=True)
def restore_default_cluster():
    was_up = c.cluster_answers()
    if was_up:
        c.run_playbook("cluster-down")
    yield
    if was_up:
        c.run_playbook("cluster-up")
