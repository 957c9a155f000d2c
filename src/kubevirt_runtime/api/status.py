"""Status helpers shared by every component: timestamps, condition lists and phase transitions.

Conditions follow Kubernetes' own rule (apimachinery's SetStatusCondition): setting a condition to
the value it already has updates its reason and message but keeps lastTransitionTime; a new value
moves lastTransitionTime to now.
"""
from __future__ import annotations

import datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now_iso() -> str:
    return format_time(datetime.datetime.now(datetime.timezone.utc))


def format_time(moment: datetime.datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)


def get_condition(status: dict | None, cond_type: str) -> dict | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def set_condition(status: dict, cond_type: str, value: str, reason: str = "", message: str = "",
                  now: str | None = None) -> None:
    conditions = status.setdefault("conditions", [])
    existing = get_condition(status, cond_type)
    if existing and existing.get("status") == value:
        existing["reason"], existing["message"] = reason, message
        return
    cond = {"type": cond_type, "status": value, "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": now or now_iso()}
    if existing:
        conditions[conditions.index(existing)] = cond
    else:
        conditions.append(cond)


def remove_condition(status: dict, cond_type: str) -> None:
    """Drops the condition; an emptied list is removed too, so status stays minimal."""
    if get_condition(status, cond_type):
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != cond_type]
    if "conditions" in status and not status["conditions"]:
        del status["conditions"]


def set_phase(status: dict, phase: str, now: str | None = None) -> bool:
    """Sets status.phase and records the transition in phaseTransitionTimestamps; False if unchanged."""
    if status.get("phase") == phase:
        return False
    status["phase"] = phase
    status.setdefault("phaseTransitionTimestamps", []).append(
        {"phase": phase, "phaseTransitionTimestamp": now or now_iso()})
    return True
