"""The startup timeline in status.startupTimeline: recorded once per stage, in stage order, readable as rows."""
from kubevirt_runtime.api import timeline


def test_stamps_have_milliseconds_and_parse_back():
    stamp = timeline.format_stamp(1767225600.1239)
    assert stamp == "2026-01-01T00:00:00.123Z"
    assert abs(timeline.parse_stamp(stamp) - 1767225600.123) < 1e-6
    assert timeline.parse_stamp("2026-01-01T00:00:01Z") == 1767225601
    assert timeline.parse_stamp("yesterday") is None and timeline.parse_stamp(None) is None


def test_record_keeps_the_first_time_and_the_stage_order():
    status = {}
    assert timeline.record(status, {"PodCreated": "2026-01-01T00:00:01.500Z", "VMICreated": "2026-01-01T00:00:01Z"})
    assert not timeline.record(status, {"PodCreated": "2026-01-01T00:00:09.000Z", "Bogus": "x", "Running": None})
    assert timeline.record(status, {"Running": "2026-01-01T00:00:04.000Z"})
    assert status["startupTimeline"] == [{"stage": "VMICreated", "time": "2026-01-01T00:00:01Z"},
                                         {"stage": "PodCreated", "time": "2026-01-01T00:00:01.500Z"},
                                         {"stage": "Running", "time": "2026-01-01T00:00:04.000Z"}]


def test_rows_give_durations_and_never_run_backwards():
    status = {}
    timeline.record(status, {"VMICreated": "2026-01-01T00:00:10Z", "PodCreated": "2026-01-01T00:00:10.400Z",
                             "PodScheduled": "2026-01-01T00:00:10Z",  # the scheduler's whole second
                             "DomainStarted": "2026-01-01T00:00:12.900Z"})
    rows = timeline.rows(status)
    assert [(r["stage"], round(r["since_start"], 3), r["duration"] and round(r["duration"], 3)) for r in rows] == [
        ("VMICreated", 0, None), ("PodCreated", 0.4, 0.4), ("PodScheduled", 0.4, 0), ("DomainStarted", 2.9, 2.5)]
    assert timeline.rows({}) == []
