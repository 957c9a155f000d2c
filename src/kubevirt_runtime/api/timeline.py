"""A VMI's startup timeline: when each stage of its start happened, kept in ``status.startupTimeline``.

    status.startupTimeline: [{"stage": "PodCreated", "time": "2026-08-25T20:10:00.123Z"}, ...]

Upstream keeps only phase transitions (with one-second resolution); this list keeps the stages in between,
in STAGES order, each recorded once (the first time wins) by the component that sees it happen:

| stage              | recorded by     | when                                                                |
| ------------------ | --------------- | ------------------------------------------------------------------- |
| VMICreated         | virt-controller | the VMI's metadata.creationTimestamp (the API server's; whole s)     |
| PodCreated         | virt-controller | its create of the launcher pod returned                             |
| PodScheduled       | virt-controller | the pod's PodScheduled condition (the scheduler's; whole seconds)    |
| ContainersStarted  | virt-launcher   | its process started (compute, the first container, after the others) |
| LauncherReady      | virt-launcher   | launcher.sock served commands (libvirt's QEMU driver answering)     |
| DomainDefined      | virt-launcher   | the domain XML was ready (disks prepared, VMI converted)            |
| DomainStarted      | virt-launcher   | libvirt had started the domain (QEMU runs the guest's vCPUs)        |
| Running            | virt-handler    | it set phase Running                                                |
| FirstConsoleOutput | virt-launcher   | the guest wrote its first byte to the serial console                |

Times are RFC 3339 UTC with milliseconds (the whole-second ones are copied as the API server wrote them).
Status schemas preserve unknown fields, so the list survives the API server and `kubectl get -o yaml` and
`kubectl describe` show it; `virtctl timeline` prints it as a table.
"""
from __future__ import annotations

import datetime

STAGES = ("VMICreated", "PodCreated", "PodScheduled", "ContainersStarted", "LauncherReady", "DomainDefined",
          "DomainStarted", "Running", "FirstConsoleOutput")
FIELD = "startupTimeline"


def format_stamp(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_stamp(value: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (with or without fractions), None when unreadable."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError):
        return None


def recorded(status: dict | None) -> dict[str, str]:
    """{stage: time} of what is recorded."""
    return {entry.get("stage"): entry.get("time") for entry in (status or {}).get(FIELD) or []
            if isinstance(entry, dict) and entry.get("stage") in STAGES and entry.get("time")}


def record(status: dict, stamps: dict[str, str | None]) -> bool:
    """Adds the stages of `stamps` that `status` lacks (unknown stages and empty times are ignored) and keeps
    the list in STAGES order; True when something was added."""
    have = recorded(status)
    added = {stage: time for stage, time in stamps.items() if stage in STAGES and time and stage not in have}
    if not added:
        return False
    have.update(added)
    status[FIELD] = [{"stage": stage, "time": have[stage]} for stage in STAGES if stage in have]
    return True


def rows(status: dict | None) -> list[dict]:
    """The recorded stages in STAGES order with `since_start` (seconds since the first recorded stage) and
    `duration` (seconds since the stage before it), for tables and benchmarks. A whole-second stamp that
    reads earlier than the stage before it (it was truncated) counts as that stage's time."""
    have = recorded(status)
    out, start, previous = [], None, None
    for stage in STAGES:
        moment = parse_stamp(have.get(stage))
        if moment is None:
            continue
        moment = moment if previous is None else max(moment, previous)
        start = moment if start is None else start
        out.append({"stage": stage, "time": have[stage], "since_start": moment - start,
                    "duration": None if previous is None else moment - previous})
        previous = moment
    return out
