"""virt-handler's part of a live migration, decided purely (handler/migration.py through decide.decide)."""
from kubevirt_runtime.handler import decide as d
from kubevirt_runtime.handler import migration as mig

ENDPOINT = ("10.244.1.3", 8187)


def vmi(node="node01", state=None, phase="Running", interfaces=True):
    spec = {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}] if interfaces else []}},
            "networks": [{"name": "default", "pod": {}}] if interfaces else []}
    status = {"phase": phase, "nodeName": node, "migrationState": state or {}}
    return {"metadata": {"name": "vm1", "namespace": "ns", "uid": "vmi-1", "resourceVersion": "5",
                         "labels": {"kubevirt.io/nodeName": node}}, "spec": spec, "status": status}


def handed(**extra):
    return {"migrationUid": "m1", "sourceNode": "node01", "targetNode": "node02", **extra}


def domain(status="Running", migration=None, final=False, reason=""):
    return {"status": status, "reason": reason, "final": final, "migration": migration}


def view(dom=None, watching=True):
    return d.LauncherView(watching=watching, domain=dom)


def kinds(actions):
    return [type(a).__name__ for a in actions]


def on(node, the_vmi, the_view, lookup=None, **mview):
    return d.decide(the_vmi, node, the_view, lookup, mig.MigrationView(endpoint=ENDPOINT, **mview))


# -- the target node

def test_the_target_connects_to_its_launcher_first():
    ready = d.Lookup(d.Where.READY, "/kubelet/pods/p2/volumes/kubernetes.io~empty-dir/sockets/launcher.sock")
    assert kinds(on("node02", vmi(state=handed()), view(watching=False), ready)) == ["Watch"]
    assert kinds(on("node02", vmi(state=handed()), view(watching=False), d.Lookup(d.Where.STARTING))) == ["Retry"]


def test_the_target_wires_the_network_prepares_the_launcher_and_listens():
    fresh = domain("Missing")
    assert kinds(on("node02", vmi(state=handed()), view(fresh))) == ["SetupNetwork", "PrepareTarget"]
    no_net = vmi(state=handed(), interfaces=False)
    assert kinds(on("node02", no_net, view(fresh))) == ["PrepareTarget"]
    prepared = domain("Missing", {"role": "target", "migrationUid": "m1", "prepared": True})
    actions = on("node02", vmi(state=handed()), view(prepared))
    assert kinds(actions) == ["RegisterTarget", "WriteMigrationState"]
    assert actions[1].fields == {"targetNodeAddress": "10.244.1.3", "targetDirectMigrationNodePorts": {"8187": 0}}
    published = handed(targetNodeAddress="10.244.1.3", targetDirectMigrationNodePorts={"8187": 0})
    assert on("node02", vmi(state=published), view(prepared), registered=frozenset({"m1"})) == []


def test_the_target_takes_the_vmi_once_the_domain_runs_there():
    published = handed(targetNodeAddress="10.244.1.3", targetDirectMigrationNodePorts={"8187": 0})
    arrived = domain("Running", {"role": "target", "migrationUid": "m1", "domainDetected": True, "completed": True,
                                 "domainReadyTimestamp": "2026-01-01T00:00:09Z"})
    ready = 1767225609.0  # 2026-01-01T00:00:09Z
    # the source reports first (completed, the downtime) ...
    waits = on("node02", vmi(state=published), view(arrived), registered=frozenset({"m1"}), now=ready + 2)
    assert kinds(waits) == ["WriteMigrationState", "Wait"]
    # ... unless it cannot: a source node that went away
    actions = on("node02", vmi(state=published), view(arrived), registered=frozenset({"m1"}), now=ready + 31)
    assert kinds(actions) == ["AckMigration"]
    reported = {**published, "completed": True, "targetNodeDomainDetected": True}
    assert kinds(on("node02", vmi(state=reported), view(arrived), registered=frozenset({"m1"}), now=ready)) == \
        ["AckMigration"]
    assert actions[0].fields == {"targetNodeDomainDetected": True, "completed": True,
                                 "targetNodeDomainReadyTimestamp": "2026-01-01T00:00:09Z",
                                 "endTimestamp": "2026-01-01T00:00:09Z"}
    status, labels = mig.ack_patch(vmi(state=published), "node02", actions[0].fields)
    assert status["status"]["nodeName"] == "node02" and labels["metadata"]["labels"]["kubevirt.io/nodeName"] == "node02"


def test_a_failed_migration_closes_the_target():
    assert kinds(on("node02", vmi(state=handed(failed=True)), view(domain("Missing")),
                    registered=frozenset({"m1"}))) == ["UnregisterTarget"]


def test_a_launcher_that_already_runs_a_domain_is_never_prepared():
    assert on("node02", vmi(state=handed()), view(domain("Running"))) == []


# -- the source node

def test_the_source_waits_for_the_target_address_then_migrates():
    assert kinds(on("node01", vmi(state=handed()), view(domain()))) == ["WriteStatus"]
    published = handed(targetNodeAddress="10.244.1.3", targetDirectMigrationNodePorts={"8187": 0})
    actions = on("node01", vmi(state=published), view(domain()))
    assert kinds(actions) == ["StartMigration", "WriteStatus"]
    assert (actions[0].address, actions[0].port) == ("10.244.1.3", 8187)
    gives_up = on("node01", vmi(state=published), view(domain()), proxy_failures=mig.MAX_PROXY_FAILURES)
    assert kinds(gives_up) == ["WriteMigrationState", "WriteStatus"] and gives_up[0].fields["failed"] is True


def test_the_source_reports_what_its_launcher_does():
    published = handed(targetNodeAddress="10.244.1.3", targetDirectMigrationNodePorts={"8187": 0})
    running = domain(migration={"role": "source", "migrationUid": "m1", "startTimestamp": "2026-01-01T00:00:05Z",
                                "mode": "PreCopy"})
    actions = on("node01", vmi(state=published), view(running), source_proxies=frozenset({"m1"}))
    assert kinds(actions) == ["WriteMigrationState", "WriteStatus"]
    assert actions[0].fields == {"startTimestamp": "2026-01-01T00:00:05Z", "mode": "PreCopy"}
    cancelled = handed(targetNodeAddress="10.244.1.3", startTimestamp="2026-01-01T00:00:05Z", mode="PreCopy",
                       abortRequested=True)
    assert kinds(on("node01", vmi(state=cancelled), view(running))) == ["AbortMigration", "WriteStatus"]


def test_the_domain_leaving_is_not_the_end_of_the_vmi():
    published = handed(targetNodeAddress="10.244.1.3", startTimestamp="2026-01-01T00:00:05Z", mode="PreCopy")
    left = domain("Shutoff", final=True, reason="Migrated",
                  migration={"role": "source", "migrationUid": "m1", "startTimestamp": "2026-01-01T00:00:05Z",
                             "endTimestamp": "2026-01-01T00:00:08Z", "completed": True, "mode": "PreCopy"})
    actions = on("node01", vmi(state=published), view(left), source_proxies=frozenset({"m1"}))
    assert kinds(actions) == ["WriteMigrationState", "StopSourceProxy"]  # no WriteStatus: the phase stays
    assert actions[0].fields == {"endTimestamp": "2026-01-01T00:00:08Z", "completed": True}


def test_a_vmi_without_a_migration_is_decided_as_before():
    assert kinds(on("node01", vmi(), view(domain()))) == ["WriteStatus"]
    assert on("node02", vmi(), view(domain())) == []  # not this node's
