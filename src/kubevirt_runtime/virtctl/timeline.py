"""`virtctl timeline VM`: the startup timeline a VMI recorded (status.startupTimeline), as a table.

    STAGE               TIME                      SINCE START  DURATION
    VMICreated          2026-08-25T20:10:00Z           0.000s
    PodCreated          2026-08-25T20:10:00.412Z       0.412s    0.412s
    ...

DURATION is the time since the stage before it, i.e. what that stage cost.
"""
from __future__ import annotations

from kubevirt_runtime.api import timeline


def table(vmi: dict) -> str:
    rows = timeline.rows(vmi.get("status"))
    if not rows:
        phase = (vmi.get("status") or {}).get("phase") or "no phase yet"
        return f"VMI {vmi['metadata']['name']} has recorded no startup stages ({phase})\n"
    lines = [f"{'STAGE':<20}{'TIME':<26}{'SINCE START':>11}{'DURATION':>10}"]
    for row in rows:
        duration = "" if row["duration"] is None else f"{row['duration']:.3f}s"
        lines.append(f"{row['stage']:<20}{row['time']:<26}{row['since_start']:>10.3f}s{duration:>10}")
    missing = [stage for stage in timeline.STAGES if stage not in {row["stage"] for row in rows}]
    if missing:
        lines.append(f"(not recorded yet: {', '.join(missing)})")
    return "\n".join(lines) + "\n"
