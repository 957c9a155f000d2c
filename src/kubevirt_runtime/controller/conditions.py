"""Condition lists and phase transitions on status dicts (shared by the VM and VMI controllers)."""
import datetime


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(status, cond_type):
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def set_condition(status, cond_type, value, reason="", message="", now=None):
    """Sets a condition; the transition time only moves when the status value changes."""
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


def remove_condition(status, cond_type):
    if status.get("conditions"):
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != cond_type]
        if not status["conditions"]:
            del status["conditions"]


def set_phase(status, phase, now=None):
    """Sets status.phase and records the transition in phaseTransitionTimestamps."""
    if status.get("phase") == phase:
        return False
    status["phase"] = phase
    status.setdefault("phaseTransitionTimestamps", []).append(
        {"phase": phase, "phaseTransitionTimestamp": now or now_iso()})
    return True
