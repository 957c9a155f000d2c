"""Admission fuzzing (issue 8): 5,000 generated VMIs and VMs through the webhook functions.

Never an exception; every rejection is a 422 naming field paths; defaulting keeps every value the user set;
every accepted VMI (and the VMI an accepted VM starts) converts to domain XML.
"""
import base64
import collections
import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings

from kubevirt_runtime.api import ValidationContext, validate_vmi
from kubevirt_runtime.apiserver import admission
from kubevirt_runtime.controller.vm_controller import build_vmi
from tests.admission_fuzz import assert_converts, assert_rejection_names_fields, assert_user_values_kept, vmis, vms

VMI_CASES = int(os.environ.get("KVO_FUZZ_VMIS", "3000"))
VM_CASES = int(os.environ.get("KVO_FUZZ_VMS", "2000"))
CTX = ValidationContext(feature_gates=frozenset({"HostDisk"}))


def _settings(examples):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _review(obj, plural, operation="CREATE"):
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "fuzz", "operation": operation, "object": copy.deepcopy(obj), "name": obj["metadata"]["name"],
        "kind": {"group": "kubevirt.io", "version": "v1", "kind": obj["kind"]},
        "resource": {"group": "kubevirt.io", "version": "v1", "resource": plural}}}


def admit(obj, plural, counts):
    """Mutating then validating webhook, as the API server calls them; returns the stored object or None."""
    response = admission.mutate(_review(obj, plural), CTX)["response"]
    if not response["allowed"]:
        assert_rejection_names_fields(response["status"])
        counts["rejected by the mutating webhook (types)"] += 1
        return None
    patch = json.loads(base64.b64decode(response["patch"])) if "patch" in response else []
    patched = admission.apply_patch(obj, patch)
    assert_user_values_kept(obj, patched)
    response = admission.validate(_review(patched, plural), CTX)["response"]
    if not response["allowed"]:
        assert_rejection_names_fields(response["status"])
        counts["rejected by the validating webhook"] += 1
        return None
    counts["accepted"] += 1
    return patched


@pytest.mark.timeout(900)  # ~20 s on an idle machine; far more under a loaded CI
def test_vmi_admission_fuzz():
    counts = collections.Counter()

    @_settings(VMI_CASES)
    @given(vmis())
    def check(vmi):
        counts["cases"] += 1
        stored = admit(vmi, "virtualmachineinstances", counts)
        if stored is not None:
            assert_converts(stored)

    check()
    print(f"VMI fuzz: {dict(counts)}")
    assert counts["cases"] >= VMI_CASES
    assert counts["accepted"] >= VMI_CASES // 20 and counts["rejected by the validating webhook"] >= VMI_CASES // 20


@pytest.mark.timeout(900)
def test_vm_admission_fuzz():
    counts = collections.Counter()

    @_settings(VM_CASES)
    @given(vms())
    def check(vm):
        counts["cases"] += 1
        stored = admit(vm, "virtualmachines", counts)
        if stored is None:
            return
        stored["metadata"]["generation"] = 1
        vmi = build_vmi(stored)
        vmi["metadata"]["uid"] = "00000000-0000-0000-0000-000000000003"
        errors = validate_vmi(vmi, CTX)
        assert errors == [], f"the VMI of an accepted VM is invalid: {[str(e) for e in errors]}"
        assert_converts(vmi)

    check()
    print(f"VM fuzz: {dict(counts)}")
    assert counts["cases"] >= VM_CASES
    assert counts["accepted"] >= VM_CASES // 20 and counts["rejected by the validating webhook"] >= VM_CASES // 20
