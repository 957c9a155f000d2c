"""virt-api's migration webhooks, the eviction interceptor and `migrate` (apiserver/migration.py), on a fake
cluster."""
import base64
import json

import pytest

from kubevirt_runtime.apiserver import migration as am
from kubevirt_runtime.client.migration import migrate_options, to_cancel


class FakeCluster:
    def __init__(self, vmis=(), pods=(), migrations=(), default=None):
        self.vmis = {(v["metadata"]["namespace"], v["metadata"]["name"]): v for v in vmis}
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        self._migrations = list(migrations)
        self.default = default
        self.marked, self.created = [], []

    def vmi(self, namespace, name):
        return self.vmis.get((namespace, name))

    def pod(self, namespace, name):
        return self.pods.get((namespace, name))

    def migrations(self, namespace, vmi_name):
        return [x for x in self._migrations if x["spec"]["vmiName"] == vmi_name]

    def mark_evacuation(self, vmi, node, dry_run):
        self.marked.append((vmi["metadata"]["name"], node, dry_run))

    def eviction_default(self):
        return self.default

    def create_migration(self, migration, dry_run):
        self.created.append((migration, dry_run))
        return {**migration, "metadata": {**migration["metadata"], "name": "kubevirt-migrate-vm-abcde"}}


def vmi(name="vm1", phase="Running", node="node01", strategy=None, migratable=True, evacuating=None):
    status = {"phase": phase, "nodeName": node, "conditions": [
        {"type": "LiveMigratable", "status": "True" if migratable else "False", "reason": "DisksNotLiveMigratable",
         "message": "cannot migrate VMI: volume 'data' is a persistentVolumeClaim"}]}
    if evacuating:
        status["evacuationNodeName"] = evacuating
    spec = {"evictionStrategy": strategy} if strategy else {}
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "3"}, "spec": spec, "status": status}


def launcher_pod(name="virt-launcher-vm1-abcde", vmi_name="vm1", node="node01", phase="Running"):
    return {"metadata": {"name": name, "namespace": "ns", "labels": {"kubevirt.io": "virt-launcher"},
                         "annotations": {"kubevirt.io/domain": vmi_name}},
            "spec": {"nodeName": node}, "status": {"phase": phase}}


def review(obj=None, operation="CREATE", name="", old=None, dry_run=False):
    request = {"uid": "r1", "operation": operation, "namespace": "ns", "name": name, "object": obj,
               "dryRun": dry_run}
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def migration(vmi_name="vm1", name="mig-1", phase=None):
    obj = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
           "metadata": {"name": name, "namespace": "ns"}, "spec": {"vmiName": vmi_name}}
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def response(answer):
    return answer["response"]


def test_a_new_migration_gets_its_label_and_finalizer():
    answer = response(am.mutate(review(migration())))
    ops = json.loads(base64.b64decode(answer["patch"]))
    assert {"op": "add", "path": "/metadata/labels/kubevirt.io~1vmi-name", "value": "vm1"} in ops
    assert {"op": "add", "path": "/metadata/finalizers", "value": ["kubevirt.io/migrationJobFinalize"]} in ops


@pytest.mark.parametrize("cluster,code,text", [
    (FakeCluster([vmi()]), None, None),
    (FakeCluster(), 422, "does not exist"),
    (FakeCluster([vmi(phase="Scheduled")]), 422, "is not running"),
    (FakeCluster([vmi(migratable=False)]), 422, "persistentVolumeClaim"),
    (FakeCluster([vmi()], migrations=[migration(name="older", phase="Running")]), 409, "in-flight migration"),
    (FakeCluster([vmi()], migrations=[migration(name="older", phase="Failed")]), None, None),
])
def test_a_migration_is_admitted_for_a_running_migratable_vmi_only(cluster, code, text):
    answer = response(am.validate(review(migration()), cluster))
    assert answer["allowed"] is (code is None)
    if code:
        assert answer["status"]["code"] == code and text in answer["status"]["message"]


def test_unsupported_spec_fields_are_named_and_the_spec_is_immutable():
    bad = migration()
    bad["spec"]["sendTo"] = {"migrationID": "x", "connectURL": "y"}
    answer = response(am.validate(review(bad), FakeCluster([vmi()])))
    assert answer["status"]["details"]["causes"][0]["field"] == "spec.sendTo"
    changed = migration(vmi_name="other")
    assert not response(am.validate(review(changed, "UPDATE", old=migration()), FakeCluster()))["allowed"]
    assert response(am.validate(review(migration(), "UPDATE", old=migration()), FakeCluster()))["allowed"]


@pytest.mark.parametrize("the_vmi,default,allowed,marked", [
    (vmi(strategy="LiveMigrate"), None, False, True),
    (vmi(), "LiveMigrate", False, True),                       # the KubeVirt CR's default
    (vmi(), None, True, False),                                # no strategy: the pod goes
    (vmi(strategy="None"), "LiveMigrate", True, False),        # the VMI's own wins
    (vmi(strategy="LiveMigrateIfPossible", migratable=False), None, True, False),
    (vmi(strategy="LiveMigrate", migratable=False), None, False, False),
    (vmi(strategy="External"), None, False, True),
    (vmi(strategy="LiveMigrate", evacuating="node01"), None, False, False),  # already under way
])
def test_evicting_a_launcher_pod_migrates_its_vmi_instead(the_vmi, default, allowed, marked):
    cluster = FakeCluster([the_vmi], [launcher_pod()], default=default)
    answer = response(am.evict(review({"kind": "Eviction"}, name="virt-launcher-vm1-abcde"), cluster))
    assert answer["allowed"] is allowed
    if not allowed:
        assert answer["status"]["code"] == 429  # kubectl drain retries
    assert bool(cluster.marked) is marked
    if marked:
        assert cluster.marked == [("vm1", "node01", False)]
        assert answer["status"]["message"] == 'Eviction triggered evacuation of VMI "ns/vm1"'


def test_other_evictions_pass():
    cluster = FakeCluster([vmi(strategy="LiveMigrate")],
                          [launcher_pod(phase="Succeeded"), {"metadata": {"name": "web", "namespace": "ns"}}])
    for pod in ("virt-launcher-vm1-abcde", "web", "gone"):
        assert response(am.evict(review({}, name=pod), cluster))["allowed"]
    assert not cluster.marked


def test_a_dry_run_eviction_marks_nothing():
    cluster = FakeCluster([vmi(strategy="LiveMigrate")], [launcher_pod()])
    am.evict(review({"kind": "Eviction"}, name="virt-launcher-vm1-abcde", dry_run=True), cluster)
    assert cluster.marked == [("vm1", "node01", True)]


def test_migrate_creates_a_migration_for_a_running_vm():
    cluster = FakeCluster([vmi()])
    made = am.migrate(cluster, "ns", "vm1", am.migrate_options(json.dumps(
        migrate_options({"zone": "b"}, dry_run=True)).encode()), vm_exists=True)
    sent, dry_run = cluster.created[0]
    assert sent["metadata"]["generateName"] == "kubevirt-migrate-vm-" and dry_run
    assert sent["spec"] == {"vmiName": "vm1", "addedNodeSelector": {"zone": "b"}}
    assert made["metadata"]["name"] == "kubevirt-migrate-vm-abcde"
    with pytest.raises(am.MigrateError, match="VM vm2 is not running") as err:
        am.migrate(cluster, "ns", "vm2", {}, vm_exists=True)
    assert err.value.code == 409
    with pytest.raises(am.MigrateError) as err:
        am.migrate(cluster, "ns", "vm2", {}, vm_exists=False)
    assert err.value.code == 404
    with pytest.raises(am.MigrateError) as err:
        am.migrate_options(b'{"addedNodeSelector": {"a": 1}}')
    assert err.value.code == 400


def test_cancel_picks_the_oldest_unfinished_migration():
    done = migration(name="a", phase="Succeeded")
    running = migration(name="b", phase="Running")
    running["metadata"]["creationTimestamp"] = "2026-01-01T00:00:02Z"
    newer = migration(name="c", phase="Pending")
    newer["metadata"]["creationTimestamp"] = "2026-01-01T00:00:05Z"
    assert to_cancel([done, newer, running])["metadata"]["name"] == "b"
    assert to_cancel([done]) is None
