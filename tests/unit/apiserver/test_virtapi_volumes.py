"""addvolume/removevolume in virt-api, by table: the options checked as upstream's, the spec after the request
and the conflicts it refuses."""
import json

import pytest

from kubevirt_runtime.apiserver.subresources import SubresourceError
from kubevirt_runtime.apiserver.volumes import parse_options, plan_request, spec_patch

SPEC = {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]}},
        "volumes": [{"name": "root", "dataVolume": {"name": "vm1-root"}}]}
ADD = {"name": "hot", "disk": {"name": "hot", "disk": {"bus": "scsi"}},
       "volumeSource": {"dataVolume": {"name": "hot-dv"}}}


def body(obj):
    return json.dumps(obj).encode()


def test_addvolume_marks_the_volume_hotpluggable_and_names_the_disk():
    opts = parse_options("addvolume", body(ADD))
    assert opts["disk"]["name"] == "hot" and opts["volumeSource"]["dataVolume"]["hotpluggable"] is True
    volumes, disks = plan_request(SPEC, "addvolume", opts)
    assert volumes[-1] == {"name": "hot", "dataVolume": {"name": "hot-dv", "hotpluggable": True}}
    assert disks[-1]["name"] == "hot" and len(SPEC["volumes"]) == 1  # the input is not changed


@pytest.mark.parametrize("sub,options,message", [
    ("addvolume", b"", "no body"),
    ("addvolume", b"{", "not JSON"),
    ("addvolume", body({"disk": {"name": "x"}, "volumeSource": {"dataVolume": {"name": "x"}}}), "name: required"),
    ("addvolume", body({"name": "", "disk": {"name": "x"}, "volumeSource": {"dataVolume": {"name": "x"}}}),
     "requires name"),
    ("addvolume", body({"name": "x", "disk": {}, "volumeSource": {"dataVolume": {"name": "x"}}}),
     "disk.name: required"),
    ("addvolume", body({"name": "x", "disk": {"name": "x"}}), "volumeSource: required"),
    ("addvolume", body({"name": "x", "disk": {"name": "x"}, "volumeSource": {"dataVolume": {"name": "x"},
                                                                  "persistentVolumeClaim": {"claimName": "x"}}}),
     "exactly one"),
    ("removevolume", body({"name": "x", "dryRun": ["Some"]}), "invalid dryRun"),
])
def test_bad_options_are_refused_naming_what_is_wrong(sub, options, message):
    with pytest.raises(SubresourceError) as refused:
        parse_options(sub, options)
    assert refused.value.code == 400 and message in str(refused.value)


@pytest.mark.parametrize("sub,options,message", [
    ("addvolume", {**ADD, "name": "root"}, "volume with that name already exists"),
    ("addvolume", {**ADD, "volumeSource": {"dataVolume": {"name": "vm1-root"}}}, "[vm1-root] because it already"),
    ("removevolume", {"name": "nope"}, "[nope] because it does not exist"),
    ("removevolume", {"name": "root"}, "[root] because it is not hotpluggable"),
])
def test_conflicting_requests_are_refused_with_409(sub, options, message):
    with pytest.raises(SubresourceError) as refused:
        plan_request(SPEC, sub, options)
    assert refused.value.code == 409 and message in str(refused.value)


def test_removevolume_takes_the_volume_and_its_disk_by_volume_or_claim_name():
    spec = {"domain": {"devices": {"disks": SPEC["domain"]["devices"]["disks"] + [{"name": "hot"}]}},
            "volumes": SPEC["volumes"] + [{"name": "hot", "dataVolume": {"name": "hot-dv", "hotpluggable": True}}]}
    for name in ("hot", "hot-dv"):
        volumes, disks = plan_request(spec, "removevolume", {"name": name})
        assert [v["name"] for v in volumes] == ["root"] and [d["name"] for d in disks] == ["root"]


def test_the_patch_tests_the_lists_it_read():
    ops = spec_patch("/spec/template", SPEC, [], [])
    assert [(o["op"], o["path"]) for o in ops] == [
        ("test", "/spec/template/spec/volumes"), ("replace", "/spec/template/spec/volumes"),
        ("test", "/spec/template/spec/domain/devices/disks"), ("replace", "/spec/template/spec/domain/devices/disks")]
    assert [o["op"] for o in spec_patch("", {}, [], [])] == ["add", "add"]
