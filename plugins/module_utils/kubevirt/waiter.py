"""Waiting, as kubernetes.core waits: look, then every wait_sleep seconds until wait_timeout has passed.

Predicates are pure functions of what was fetched; `wait` only loops.
"""
from __future__ import annotations

import time

from ansible.module_utils.parsing.convert_bool import boolean


def condition_met(obj: dict | None, condition: dict) -> bool:
    """obj has a status condition of condition["type"] with that status (and reason, when given)."""
    if not obj:
        return False
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") != condition["type"]:
            continue
        wanted = condition.get("status", True)
        if cond.get("status") == "Unknown" or wanted == "Unknown":
            ok = cond.get("status") == wanted
        else:
            ok = (cond.get("status") == "True") == boolean(wanted, strict=False)
        if ok and condition.get("reason"):
            ok = cond.get("reason") == condition["reason"]
        return ok
    return False


def wait(fetch, predicate, timeout: float, sleep: float, clock=time.monotonic, sleeper=time.sleep):
    """Calls fetch() until predicate(fetched) holds or timeout seconds passed.
    Returns (satisfied, last fetched, seconds waited)."""
    start = clock()
    while True:
        current = fetch()
        elapsed = clock() - start
        if predicate(current):
            return True, current, elapsed
        if elapsed >= timeout:
            return False, current, elapsed
        sleeper(max(0.0, min(sleep, timeout - elapsed)))
