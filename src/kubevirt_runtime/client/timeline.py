"""How a VMI came up, from what the API already records (pure; the caller fetches the objects).

    startup_timeline(vmi, pod=None, events=()) -> [{"step", "time", "seconds"}, ...]

Steps, in order, each from the VMI's status.startupTimeline where kubevirt-ops recorded it (milliseconds, see
api/timeline.py), else from what any KubeVirt leaves in the API (one-second resolution):
- vmi_created:    VMICreated, else the VMI's metadata.creationTimestamp;
- pod_scheduled:  PodScheduled, else the launcher pod's PodScheduled=True transition (or the VMI's copy of it);
- pod_ready:      the launcher pod's Ready=True transition, else LauncherReady;
- domain_started: DomainStarted, else the first "Created" event virt-handler recorded on the VMI (upstream's
  "VirtualMachineInstance defined": the domain was started in the launcher);
- vmi_running:    Running, else when status.phaseTransitionTimestamps says the phase became Running.

`time` is the recorded timestamp (RFC 3339; None when the step is not recorded or not readable) and `seconds`
the time since vmi_created.
"""
from __future__ import annotations

import datetime

from ..api.timeline import recorded

STEPS = ("vmi_created", "pod_scheduled", "pod_ready", "domain_started", "vmi_running")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _transition(obj: dict | None, cond_type: str) -> str | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type and cond.get("status") == "True":
            return cond.get("lastTransitionTime")
    return None


def _phase_time(vmi: dict, phase: str) -> str | None:
    times = [t.get("phaseTransitionTimestamp") for t in (vmi.get("status") or {}).get("phaseTransitionTimestamps") or []
             if t.get("phase") == phase]
    return times[-1] if times else None


def _event_time(events, reason: str) -> str | None:
    found = []
    for event in events:
        if event.get("reason") == reason:
            stamp = event.get("firstTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
                "creationTimestamp")
            if parse_time(stamp):
                found.append(stamp)
    return min(found, key=parse_time) if found else None


def startup_timeline(vmi: dict, pod: dict | None = None, events=()) -> list[dict]:
    stages = recorded(vmi.get("status"))
    times = {
        "vmi_created": stages.get("VMICreated") or (vmi.get("metadata") or {}).get("creationTimestamp"),
        "pod_scheduled": stages.get("PodScheduled") or _transition(pod, "PodScheduled")
        or _transition(vmi, "PodScheduled"),
        "pod_ready": _transition(pod, "Ready") or stages.get("LauncherReady"),
        "domain_started": stages.get("DomainStarted") or _event_time(events, "Created"),
        "vmi_running": stages.get("Running") or _phase_time(vmi, "Running"),
    }
    start = parse_time(times["vmi_created"])
    out = []
    for step in STEPS:
        stamp = parse_time(times[step])
        seconds = (stamp - start).total_seconds() if stamp and start else None
        out.append({"step": step, "time": times[step] if stamp else None, "seconds": seconds})
    return out
