"""The KubeVirt API as plain dicts (the API server's JSON): kubevirt.io/v1 VMs, VMIs and replica sets,
pool.kubevirt.io pools, instancetype.kubevirt.io instancetypes and preferences.

Public contract (other components import these names from `kubevirt_runtime.api`):

- ``default_vmi(vmi) -> dict`` / ``default_vm(vm, create=False) -> dict``: defaulted deep copies (pure; what
  the mutating webhook applies). ``default_vmi_spec(spec)`` defaults a spec in place.
- ``validate_vmi(vmi, ctx=None)`` / ``validate_vm(vm, ctx=None)`` -> list[FieldError]: empty when valid;
  a ``ValidationContext`` brings feature gates and instancetype lookups (without one, cluster-dependent
  checks are skipped). ``type_errors(kind, obj)``: only the badly typed fields.
  ``FieldError`` has ``field`` (path such as ``spec.domain.devices.disks[0].bus``), ``message``,
  ``reason`` (a metav1.CauseType) and ``as_cause()``; ``str(err)`` is ``"<field>: <message>"``.
  Any upstream field we do not implement is reported (reason FieldValueNotSupported) with the reason,
  never dropped: the schemas are upstream's (upstream.py), what we implement is schema.py.
- ``effective_run_strategy(vm)``: runStrategy, or the deprecated ``running`` mapped to Always/Halted.
- Constants: ``GROUP``, ``VERSION``, ``API_VERSION``, kinds/plurals, ``VMIPhase``, ``RunStrategy``,
  ``PrintableStatus``, ``ConditionType``, ``StateChangeAction``, label/annotation/finalizer names
  (see constants.py).
- instancetype.py (applying instancetypes and preferences), labels.py (label selectors), podpaths.py
  (where the launcher pod mounts each volume), status.py (conditions and phases).
- CRDs: ``python -m kubevirt_runtime.api.crdgen`` writes ``kubevirt_runtime/api/crds/*.yaml``;
  ``crdgen.load_crds()`` returns them as dicts for installers.

Status subresource: both VMs and VMIs have one, so status is written with the ``/status`` endpoint
(``patch_namespaced_custom_object_status``) and spec/metadata with the main one. (Upstream's VMI has no
status subresource; ours does so that a user's `kubectl apply` cannot clobber what virt-controller and
virt-handler observed, and so status writes never race with spec edits.) Status schemas preserve unknown
fields so a component may add upstream status fields that are not listed yet.
"""
import importlib
from typing import TYPE_CHECKING

from .constants import (
    API_VERSION,
    GROUP,
    VERSION,
    VM_KIND,
    VM_PLURAL,
    VMI_KIND,
    VMI_PLURAL,
    ConditionType,
    PrintableStatus,
    RunStrategy,
    StateChangeAction,
    VMIPhase,
    vmi_is_final,
)

# defaults and validation (with upstream's whole schema behind them) load on first use: a launcher, which
# needs only constants, quantities and pod paths, does not carry them.
_LAZY = {name: "defaults" for name in ("default_vm", "default_vmi", "default_vmi_spec", "effective_run_strategy")}
_LAZY.update({name: "validation" for name in ("FieldError", "ValidationContext", "type_errors", "validate_vm",
                                              "validate_vmi", "validate_vmi_spec")})


if TYPE_CHECKING:  # what the lazy names are, for readers and checkers
    from .defaults import default_vm, default_vmi, default_vmi_spec, effective_run_strategy
    from .validation import FieldError, ValidationContext, type_errors, validate_vm, validate_vmi, validate_vmi_spec


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "API_VERSION", "GROUP", "VERSION", "VM_KIND", "VM_PLURAL", "VMI_KIND", "VMI_PLURAL", "ConditionType",
    "PrintableStatus", "RunStrategy", "StateChangeAction", "VMIPhase", "vmi_is_final",
    "default_vm", "default_vmi", "default_vmi_spec", "effective_run_strategy",
    "FieldError", "ValidationContext", "type_errors", "validate_vm", "validate_vmi", "validate_vmi_spec",
]
