"""Table and time formatting for people."""

from __future__ import annotations

import pytest

from shoal.cli import render
from shoal.client import enum_name, enum_value
from shoal.errors import InvalidArgument
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit


def test_table_aligns_columns() -> None:
    text = render.table(("A", "LONGER", "C"), [("xxxx", 1, "last"), ("y", None, "")])
    assert text.splitlines() == ["A     LONGER  C", "xxxx  1       last", "y"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (3, "3s"), (119, "119s"), (120, "2m"), (7199, "119m"), (7200, "2h"), (3 * 86400, "3d")],
)
def test_age(seconds: int, text: str) -> None:
    now = 1_700_000_000_000
    assert render.age(now - seconds * 1000, now) == text


def test_unset_times_render_empty() -> None:
    assert render.age(0) == "" and render.local_time(0) == "" and render.ms(0) is None


def test_local_time_is_iso() -> None:
    assert render.local_time(1_700_000_000_000)[:4] == "2023"
    assert "T" in render.local_time(1_700_000_000_000)


def test_enum_names_are_bare_and_case_insensitive_on_input() -> None:
    assert enum_name(types_pb2.JobStatus, types_pb2.JOB_STATUS_RUNNABLE) == "RUNNABLE"
    assert enum_name(types_pb2.NodeStatus, types_pb2.NODE_STATUS_DRAINED) == "DRAINED"
    assert enum_value(types_pb2.JobStatus, "runnable") == types_pb2.JOB_STATUS_RUNNABLE
    assert enum_value(types_pb2.JobStatus, "JOB_STATUS_FAILED") == types_pb2.JOB_STATUS_FAILED
    assert (
        enum_value(types_pb2.ComputeEnvironmentType, "Managed") == types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED
    )
    with pytest.raises(InvalidArgument, match="expected one of ENABLED, DISABLED"):
        enum_value(types_pb2.EntityState, "on", what="state")
    with pytest.raises(InvalidArgument):
        enum_value(types_pb2.JobStatus, "unspecified")


def test_memory_and_numbers() -> None:
    assert (render.memory(512), render.memory(16384), render.memory(1536)) == ("512Mi", "16Gi", "1.5Gi")
    assert (render.num(1.0), render.num(0.5)) == (1, 0.5)


def test_log_records_render_as_the_lines_printed_whatever_the_chunking() -> None:
    records = (b"2024-05-01T12:00:00.000001Z stdout F hello world\n"
               b"2024-05-01T12:00:00.000002Z stderr P a long \n"
               b"2024-05-01T12:00:00.000003Z stdout F between\n"
               b"2024-05-01T12:00:00.000004Z stderr F line\n"
               b"2024-05-01T12:00:00.000005Z shoal F Job attempt duration exceeded timeout\n"
               b"not a record\n")
    for size in (1, 7, len(records)):
        renderer = render.LogRenderer()
        out = b"".join(renderer.feed(records[i:i + size]) for i in range(0, len(records), size)) + renderer.flush()
        assert out.decode().splitlines() == ["hello world", "between", "a long line",
                                             "[shoal] Job attempt duration exceeded timeout", "not a record"]
    stamped = render.LogRenderer(timestamps=True)
    assert stamped.feed(records[:49]) == b"2024-05-01T12:00:00.000001Z stdout hello world\n"


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata"])
def test_local_time_is_what_datetime_says(tz: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import datetime

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        for ms in (1_700_000_000_123, 1_720_000_000_000, 86_400_000):
            expected = datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")
            assert render.local_time(ms) == expected
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
