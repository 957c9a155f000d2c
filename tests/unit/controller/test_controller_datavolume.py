"""DataVolume controller: the pure plan by table (phases, conditions, progress, failures), the importer pod it
asks for, and the loop against the in-memory API."""
import json

import pytest

from kubevirt_runtime.api import cdi
from kubevirt_runtime.controller import datavolume as dvc
from kubevirt_runtime.controller import storage_pods
from tests.unit.fakeapi import FakeInformer, FakeRecorder, FakeResource

NOW = "2026-01-01T00:00:00Z"
IMAGE = "docker.io/kubevirt-ops/virt-launcher:devel"


def dv(source=None, phase=None, size="1Gi", **status):
    body = {"apiVersion": cdi.API_VERSION, "kind": cdi.KIND,
            "metadata": {"name": "disk", "namespace": "ns", "uid": "dv-uid"},
            "spec": {"source": source or {"http": {"url": "http://server/disk.img"}},
                     "storage": {"resources": {"requests": {"storage": size}}} if size else {}}}
    if phase is not None:
        body["status"] = {"phase": phase, **status}
    return body


def pvc(owned=True, phase="Pending", annotations=None, name="disk", size="1Gi"):
    meta = {"name": name, "namespace": "ns", "uid": f"pvc-{name}", "annotations": annotations or {}}
    if owned:
        meta["ownerReferences"] = [{"kind": cdi.KIND, "name": "disk", "uid": "dv-uid", "controller": True}]
    return {"metadata": meta, "spec": {"resources": {"requests": {"storage": size}}}, "status": {"phase": phase}}


def pod(phase="Running", ready=True, restarts=0, state=None, last=None, scheduled=None):
    container = {"name": "importer", "ready": ready, "restartCount": restarts, "state": state or {"running": {}}}
    if last:
        container["lastState"] = last
    status = {"phase": phase, "containerStatuses": [container], "podIP": "10.244.0.9"}
    if scheduled:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": scheduled}]
    return {"metadata": {"name": "importer-disk", "namespace": "ns", "uid": "pod-uid",
                         "ownerReferences": [{"kind": cdi.KIND, "name": "disk", "uid": "dv-uid", "controller": True}]},
            "status": status}


def terminated(code, message, permanent=False):
    return {"terminated": {"exitCode": code, "message": json.dumps({"message": message, "permanent": permanent})}}


def conditions(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}


def run(dv_obj, pvc_obj=None, pod_obj=None, **kw):
    return dvc.plan(dv_obj, pvc_obj, pod_obj, default_class="local-path", image=IMAGE, now=NOW, **kw)


def test_a_new_datavolume_gets_its_pvc_from_the_default_class():
    todo = run(dv())
    assert todo.create_pvc["metadata"]["name"] == "disk"
    assert todo.create_pvc["spec"] == {"resources": {"requests": {"storage": "1Gi"}}, "accessModes": ["ReadWriteOnce"],
                                       "volumeMode": "Filesystem", "storageClassName": "local-path"}
    assert todo.create_pvc["metadata"]["ownerReferences"][0]["uid"] == "dv-uid"
    assert todo.status["phase"] == "Pending" and todo.status["claimName"] == "disk"
    assert todo.create_pod is None


@pytest.mark.parametrize("source, phase, pod_name, role", [
    ({"http": {"url": "http://server/disk.img"}}, "ImportScheduled", "importer-disk", "importer"),
    ({"blank": {}}, "ImportScheduled", "importer-disk", "importer"),
    ({"registry": {"url": "docker://docker.io/kubevirt-ops/demo-disk:devel"}}, "ImportScheduled", "importer-disk",
     "importer"),
    ({"upload": {}}, "UploadScheduled", "cdi-upload-disk", "cdi-upload-server"),
    ({"pvc": {"namespace": "ns", "name": "golden"}}, "CloneScheduled", "importer-disk", "clone"),
])
def test_once_the_pvc_exists_the_importer_pod_is_made(source, phase, pod_name, role):
    todo = run(dv(source), pvc(), source_pvc=pvc(owned=False, name="golden", size="2Gi"))
    assert todo.status["phase"] == phase and todo.status["progress"] == "N/A"
    made = todo.create_pod
    assert made["metadata"]["name"] == pod_name
    assert made["metadata"]["labels"] == {"app": "containerized-data-importer", "cdi.kubevirt.io": role}
    assert made["metadata"]["ownerReferences"][0]["uid"] == "dv-uid"
    assert made["spec"]["restartPolicy"] == "OnFailure"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "disk"}} in made["spec"]["volumes"]
    command = made["spec"]["containers"][0]["command"]
    assert command[:4] == ["virt-importer", "import", "--source", next(iter(source))]
    assert command[command.index("--size") + 1] == str(cdi.image_size(1 << 30))


def test_registry_source_runs_the_image_like_a_container_disk():
    made = run(dv({"registry": {"url": "docker://docker.io/kubevirt-ops/demo-disk:devel"}}), pvc()).create_pod
    init = made["spec"]["initContainers"]
    assert [c["image"] for c in init] == [IMAGE, "docker.io/kubevirt-ops/demo-disk:devel"]
    assert init[1]["command"][0] == storage_pods.BUSYBOX  # the image itself needs no shell


def test_clone_mounts_the_source_read_only_and_takes_its_size():
    made = run(dv({"pvc": {"namespace": "ns", "name": "golden"}}, size=None), pvc(),
               source_pvc=pvc(owned=False, name="golden", size="2Gi")).create_pod
    assert {"name": "source", "persistentVolumeClaim": {"claimName": "golden", "readOnly": True}} in \
        made["spec"]["volumes"]
    command = made["spec"]["containers"][0]["command"]
    assert command[command.index("--size") + 1] == str(cdi.image_size(2 << 30))


def test_a_clone_waits_for_its_source():
    todo = run(dv({"pvc": {"namespace": "ns", "name": "golden"}}))
    assert todo.create_pvc is None and todo.status["phase"] == "Pending"
    assert conditions(todo.status)["Ready"] == ("False", "CloneSourceNotFound")


@pytest.mark.parametrize("pod_obj, phase, progress, running", [
    (pod(phase="Pending", ready=False, state={"waiting": {}}), "ImportScheduled", "N/A", ("False", "Pending")),
    (pod(), "ImportInProgress", "45.50%", ("True", "")),
    (pod(restarts=1, last=terminated(1, "Unable to connect to http data source: connection refused")),
     "ImportInProgress", "45.50%", ("True", "Restarted")),
])
def test_progress_follows_the_pod(pod_obj, phase, progress, running):
    todo = run(dv(phase="ImportScheduled", progress="N/A"), pvc(phase="Bound"), pod_obj, progress=45.5)
    assert todo.status["phase"] == phase
    assert todo.status["progress"] == progress
    assert conditions(todo.status)["Running"] == running
    assert conditions(todo.status)["Bound"] == ("True", "Bound")


def test_success_annotates_the_pvc_and_removes_the_pod():
    done = pod(phase="Succeeded", state=terminated(0, "Import Complete"))
    todo = run(dv(phase="ImportInProgress"), pvc(phase="Bound"), done)
    assert todo.status["phase"] == "Succeeded" and todo.status["progress"] == "100.0%"
    assert todo.delete_pod
    assert todo.annotate_pvc["metadata"]["annotations"][cdi.POPULATED_FOR] == "disk"
    assert conditions(todo.status) == {"Bound": ("True", "Bound"), "Running": ("False", "Completed"),
                                       "Ready": ("True", "")}
    # and it stays so, the pod gone
    again = run(dv(phase="Succeeded"), pvc(phase="Bound", annotations={cdi.POPULATED_FOR: "disk"}), None)
    assert again.create_pod is None and again.status["phase"] == "Succeeded"


@pytest.mark.parametrize("pod_obj, words", [
    (pod(restarts=1, last=terminated(2, "Unable to connect to http data source: expected status code 200, got "
                                        "404. Status: 404 Not Found", permanent=True)), "got 404"),
    (pod(restarts=3, last=terminated(1, "connection refused")), "connection refused"),
    (pod(phase="Pending", ready=False, state={"waiting": {}}) | {"status": {"phase": "Pending",
     "initContainerStatuses": [{"name": "registry-disk", "state": {"waiting": {"reason": "ErrImageNeverPull",
                                                                              "message": "image not present"}}}]}},
     "ErrImageNeverPull"),
])
def test_failures_that_retries_cannot_fix_fail_the_datavolume(pod_obj, words):
    todo = run(dv(phase="ImportInProgress"), pvc(phase="Bound"), pod_obj)
    assert todo.status["phase"] == "Failed" and todo.delete_pod
    ready = [c for c in todo.status["conditions"] if c["type"] == "Ready"][0]
    assert ready["reason"] == "Error" and words in ready["message"]
    assert ("Warning", "Error") == todo.events[0][:2]


def test_a_failed_datavolume_stays_failed():
    todo = run(dv(phase="Failed"), pvc(phase="Bound"), None)
    assert todo.create_pod is None and todo.status["phase"] == "Failed"


def test_prepopulated_pvc_is_adopted_without_an_import():
    todo = run(dv(), pvc(owned=False, annotations={cdi.PRE_POPULATED: "disk"}))
    assert todo.status["phase"] == "Succeeded" and todo.create_pod is None and todo.create_pvc is None
    assert todo.annotate_pvc["metadata"]["ownerReferences"][-1]["uid"] == "dv-uid"


def test_someone_elses_pvc_is_not_touched():
    todo = run(dv(), pvc(owned=False))
    assert todo.create_pod is None and todo.annotate_pvc is None
    assert conditions(todo.status)["Ready"] == ("False", "ErrResourceExists")


def test_default_storage_class():
    classes = [{"metadata": {"name": n, "creationTimestamp": t, "annotations": {dvc.DEFAULT_CLASS_ANNOTATION: d}}}
               for n, t, d in (("a", "2026-01-01T00:00:00Z", "true"), ("b", "2026-01-02T00:00:00Z", "false"))]
    assert dvc.default_storage_class(classes) == "a"
    assert dvc.default_storage_class([]) is None


def test_the_loop_creates_pvc_then_pod_then_finishes():
    dvs = FakeResource(cdi.KIND, cdi.API_VERSION)
    pvcs = FakeResource("PersistentVolumeClaim", "v1")
    pods = FakeResource("Pod", "v1")
    classes = FakeInformer()
    recorder = FakeRecorder()
    controller = dvc.DataVolumeController(dvs, pvcs, pods, dvs.informer, pvcs.informer, pods.informer, classes,
                                          recorder, IMAGE, progress_reader=lambda pod: 12.5)
    created = dvs.create({k: v for k, v in dv().items() if k != "metadata"} | {"metadata": {"name": "disk"}}, "ns")
    controller.sync("ns/disk")
    assert pvcs.objects["ns/disk"]["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    controller.sync("ns/disk")
    importer = pods.objects["ns/importer-disk"]
    assert dvs.objects["ns/disk"]["status"]["phase"] == "ImportScheduled"
    importer["status"] = pod()["status"]
    pods.informer.deliver("upsert", importer)
    controller.sync("ns/disk")
    assert dvs.objects["ns/disk"]["status"]["progress"] == "12.50%"
    importer["status"] = pod(phase="Succeeded", state=terminated(0, "Import Complete"))["status"]
    pods.informer.deliver("upsert", importer)
    controller.sync("ns/disk")
    assert dvs.objects["ns/disk"]["status"]["phase"] == "Succeeded"
    assert "ns/importer-disk" not in pods.objects
    assert pvcs.objects["ns/disk"]["metadata"]["annotations"][cdi.POPULATED_FOR] == "disk"
    assert recorder.reasons() == ["Pending", "ImportScheduled", "ImportSucceeded"]
    writes = len(dvs.calls)
    controller.sync("ns/disk")
    assert len(dvs.calls) == writes  # nothing left to write


def vm_dv(name, phase=None):
    body = dv(phase=phase)
    body["metadata"].update(name=name, uid=f"uid-{name}",
                            ownerReferences=[{"kind": "VirtualMachine", "name": "vm", "uid": "vm-uid",
                                              "controller": True}])
    return body


def placed_pvc(node):
    return pvc(annotations={dvc.SELECTED_NODE: node} if node else {})


def importer(node=None, deleting=False):
    body = pod(phase="Pending")
    body["metadata"] = {"name": "importer-x", "namespace": "ns", "uid": "pod-x"}
    body["spec"] = {"nodeName": node} if node else {}
    if deleting:
        body["metadata"]["deletionTimestamp"] = NOW
    return body


@pytest.mark.parametrize("name,siblings,expected", [
    ("b-root", [], dvc.Placement()),
    ("b-root", [(vm_dv("a-data", "Succeeded"), placed_pvc("node02"), None)], dvc.Placement(node="node02")),
    ("a-root", [(vm_dv("b-data", "ImportInProgress"), placed_pvc(None), importer("node01"))],
     dvc.Placement(node="node01")),
    ("a-root", [(vm_dv("b-data", "ImportScheduled"), placed_pvc(None), importer())], dvc.Placement(wait="b-data")),
    ("b-root", [(vm_dv("a-data", "Pending"), None, None)], dvc.Placement(wait="a-data")),
    ("a-root", [(vm_dv("b-data", "Pending"), None, None)], dvc.Placement()),
    ("b-root", [(vm_dv("a-data", "Failed"), placed_pvc(None), None)], dvc.Placement()),
    ("b-root", [(vm_dv("a-data", "ImportScheduled"), placed_pvc(None), importer(deleting=True))],
     dvc.Placement(wait="a-data")),
])
def test_a_vms_datavolumes_are_imported_on_one_node(name, siblings, expected):
    assert dvc.placement(vm_dv(name), siblings) == expected


def test_a_placed_import_is_pinned_and_a_waiting_one_makes_no_pod():
    pinned = dvc.plan(dv(), pvc(), None, image=IMAGE, now=NOW, place=dvc.Placement(node="node02"))
    terms = pinned.create_pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["node02"]
    waiting = dvc.plan(dv(), pvc(), None, image=IMAGE, now=NOW, place=dvc.Placement(wait="a-data"))
    assert waiting.create_pod is None and waiting.wait_for_placement
    assert waiting.status["phase"] == "Pending"
    assert "a-data" in next(c for c in waiting.status["conditions"] if c["type"] == "Running")["message"]


def test_the_claim_carries_the_datavolumes_annotations_so_a_user_can_place_it():
    body = dv()
    body["metadata"]["annotations"] = {dvc.SELECTED_NODE: "node02",
                                       "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    annotations = dvc.new_pvc(body, "local-path")["metadata"]["annotations"]
    assert annotations == {dvc.SELECTED_NODE: "node02", cdi.CONTENT_TYPE: "kubevirt"}
