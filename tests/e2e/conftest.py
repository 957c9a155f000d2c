"""The e2e session brings the local cluster up once (two nodes, E2E_NODES; or reuses one that is already up)
and, if it made it, the last test module takes it down and checks that nothing is left."""
import pytest

from tests.e2e import cluster as c


class ClusterSession:
    def __init__(self):
        self.created_here = False
        self.traces_before = None
        self.up_seconds = None
        self.up_output = ""


_session = ClusterSession()


@pytest.fixture(scope="session")
def cluster():
    if not _session.created_here and not c.cluster_answers():
        _session.traces_before = c.host_traces()
        _, _session.up_output, _session.up_seconds = c.run_playbook("cluster-up", env={"NODES": c.E2E_NODES})
        _session.created_here = True
        print(f"\ncluster-up took {_session.up_seconds:.0f}s")
    return _session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and c.cluster_answers():
        report.sections.append(("Captured cluster state at the failure", c.failure_diagnostics()))
    return report
