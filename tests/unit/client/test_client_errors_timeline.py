"""How refused requests are described (422 causes one per line, 403 verb and resource) and the startup timeline."""
import pytest

from kubevirt_runtime.client.errors import describe, request_of
from kubevirt_runtime.client.timeline import startup_timeline
from kubevirt_runtime.machinery.resource import ApiError

VMS = "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines"


@pytest.mark.parametrize("method,path,verb,resource,name", [
    ("GET", f"{VMS}/vm1", "get", "virtualmachines.kubevirt.io", "vm1"),
    ("GET", VMS, "list", "virtualmachines.kubevirt.io", ""),
    ("PATCH", f"{VMS}/vm1", "patch", "virtualmachines.kubevirt.io", "vm1"),
    ("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm1/start", "update",
     "virtualmachines.subresources.kubevirt.io/start", "vm1"),
    ("DELETE", "/api/v1/namespaces/ns/pods/p", "delete", "pods", "p"),
    ("GET", "/api/v1/namespaces", "list", "namespaces", ""),
    ("GET", "wss://10.0.0.1:6443/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v/console",
     "get", "virtualmachineinstances.subresources.kubevirt.io/console", "v"),
])
def test_request_of(method, path, verb, resource, name):
    req = request_of(method, path)
    assert (req.verb, req.qualified_resource, req.name) == (verb, resource, name)


def test_422_lists_every_cause_on_its_own_line():
    exc = ApiError(422, {"kind": "Status", "reason": "Invalid", "code": 422,
                         "message": 'admission webhook "virtualmachines-validate.kubevirt.io" denied the request: ...',
                         "details": {"name": "vm1", "kind": "VirtualMachine", "causes": [
                             {"reason": "FieldValueInvalid", "field": "spec.template.spec.domain.devices.disks[1].name",
                              "message": "disk 'datadisk' has no volume"},
                             {"reason": "FieldValueRequired", "field": "spec.template.spec.domain.memory",
                              "message": "memory is required"}]}}, "POST", VMS)
    assert describe(exc).splitlines() == [
        'VirtualMachine "vm1" was rejected as invalid (422 Invalid):',
        "spec.template.spec.domain.devices.disks[1].name: disk 'datadisk' has no volume",
        "spec.template.spec.domain.memory: memory is required"]


def test_403_names_the_verb_and_the_resource():
    exc = ApiError(403, {"reason": "Forbidden", "message": 'User "bob" cannot update resource ...'}, "PUT",
                   "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm1/stop")
    assert describe(exc) == ('forbidden: update on virtualmachines.subresources.kubevirt.io/stop "vm1" in namespace '
                             '"ns" was refused: User "bob" cannot update resource ...')


def test_404_and_others():
    assert describe(ApiError(404, {"reason": "NotFound", "message": "gone"}, "GET", f"{VMS}/x")) == \
        'not found: virtualmachines.kubevirt.io "x" in namespace "ns" (gone)'
    assert describe(ApiError(409, {"reason": "Conflict", "message": "VM vm1 is not running"}, "PUT",
                             f"{VMS}/vm1")) == \
        'update virtualmachines.kubevirt.io "vm1" in namespace "ns": 409 Conflict: VM vm1 is not running'


def test_timeline_from_vmi_pod_and_events():
    vmi = {"metadata": {"creationTimestamp": "2026-01-01T10:00:00Z"},
           "status": {"phaseTransitionTimestamps": [
               {"phase": "Pending", "phaseTransitionTimestamp": "2026-01-01T10:00:00Z"},
               {"phase": "Running", "phaseTransitionTimestamp": "2026-01-01T10:00:09Z"}]}}
    pod = {"status": {"conditions": [{"type": "PodScheduled", "status": "True",
                                      "lastTransitionTime": "2026-01-01T10:00:01Z"},
                                     {"type": "Ready", "status": "True",
                                      "lastTransitionTime": "2026-01-01T10:00:05Z"}]}}
    events = [{"reason": "Started", "firstTimestamp": "2026-01-01T10:00:09Z"},
              {"reason": "Created", "firstTimestamp": "2026-01-01T10:00:08Z"}]
    steps = startup_timeline(vmi, pod, events)
    assert [(s["step"], s["seconds"]) for s in steps] == [
        ("vmi_created", 0), ("pod_scheduled", 1), ("pod_ready", 5), ("domain_started", 8), ("vmi_running", 9)]


def test_timeline_without_pod_or_events_says_what_is_unknown():
    vmi = {"metadata": {"creationTimestamp": "2026-01-01T10:00:00Z"},
           "status": {"conditions": [{"type": "PodScheduled", "status": "True",
                                      "lastTransitionTime": "2026-01-01T10:00:02Z"}]}}
    steps = {s["step"]: s for s in startup_timeline(vmi)}
    assert steps["pod_scheduled"]["seconds"] == 2
    assert steps["pod_ready"] == {"step": "pod_ready", "time": None, "seconds": None}


def test_timeline_prefers_the_recorded_stages():
    vmi = {"metadata": {"creationTimestamp": "2026-01-01T10:00:00Z"},
           "status": {"startupTimeline": [{"stage": "VMICreated", "time": "2026-01-01T10:00:00Z"},
                                          {"stage": "PodScheduled", "time": "2026-01-01T10:00:00.400Z"},
                                          {"stage": "LauncherReady", "time": "2026-01-01T10:00:02.250Z"},
                                          {"stage": "DomainStarted", "time": "2026-01-01T10:00:03.125Z"},
                                          {"stage": "Running", "time": "2026-01-01T10:00:03.500Z"}],
                      "phaseTransitionTimestamps": [{"phase": "Running",
                                                     "phaseTransitionTimestamp": "2026-01-01T10:00:04Z"}]}}
    steps = {s["step"]: s["seconds"] for s in startup_timeline(vmi, None, [])}
    assert steps == {"vmi_created": 0, "pod_scheduled": 0.4, "pod_ready": 2.25, "domain_started": 3.125,
                     "vmi_running": 3.5}
