"""Capacity, identity and command-line resolution of the agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from agent.capacity import Capacity, measure_host, offered_capacity
from agent.identity import default_state_dir, load_or_create_node_id, lock_state_dir
from agent.main import build_parser, config_from_args, main, parse_controllers, parse_labels
from shoal.errors import FailedPrecondition, InvalidArgument

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

HOST = Capacity(vcpus=16.0, memory_mib=64 * 1024)


def test_the_host_has_something_to_offer() -> None:
    host = measure_host()
    assert host.vcpus >= 1 and host.memory_mib > 0


def test_offers_the_whole_host_by_default() -> None:
    assert offered_capacity(HOST) == HOST


def test_reserve_is_taken_off_the_measured_or_given_capacity() -> None:
    assert offered_capacity(HOST, reserve_vcpus=2, reserve_memory_mib=4096) == Capacity(14.0, 60 * 1024)
    assert offered_capacity(HOST, vcpus=8, memory_mib=8192, reserve_vcpus=0.5, reserve_memory_mib=1024) == Capacity(
        7.5, 7168
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vcpus": 17}, "--vcpus 17 is more than this host has"),
        ({"memory_mib": 64 * 1024 + 1}, "--memory-mib 65537 is more than this host has"),
        ({"vcpus": 0}, "--vcpus must be > 0"),
        ({"reserve_vcpus": 16}, "nothing left for jobs"),
        ({"memory_mib": 1024, "reserve_memory_mib": 1024}, "nothing left for jobs"),
        ({"reserve_vcpus": -1}, "cannot be negative"),
    ],
)
def test_impossible_capacity_is_refused_clearly(overrides: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        offered_capacity(HOST, **overrides)


def test_node_id_is_created_once_and_kept(tmp_path: Path) -> None:
    first = load_or_create_node_id(tmp_path, "web-1")
    assert first.startswith("web-1-") and len(first) == len("web-1-") + 6
    assert load_or_create_node_id(tmp_path, "renamed") == first
    assert (tmp_path / "node-id").read_text().strip() == first


def test_default_state_dir_follows_xdg_for_users(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "shoal" / "agent"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == Path.home() / ".local" / "state" / "shoal" / "agent"
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_state_dir() == Path("/var/lib/shoal/agent")


def test_one_agent_per_state_dir(tmp_path: Path) -> None:
    held = lock_state_dir(tmp_path)
    try:
        with pytest.raises(FailedPrecondition, match="another agent"):
            lock_state_dir(tmp_path)
    finally:
        held.close()
    lock_state_dir(tmp_path).close()


def test_labels_and_controllers_are_parsed() -> None:
    assert parse_labels(["zone=a", "gpu = none", "empty="]) == {"zone": "a", "gpu": "none", "empty": ""}
    with pytest.raises(InvalidArgument, match="KEY=VALUE"):
        parse_labels(["novalue"])
    assert parse_controllers("a:1, b:2,") == ("a:1", "b:2")
    with pytest.raises(InvalidArgument, match="not HOST:PORT"):
        parse_controllers("a")


def test_flags_resolve_into_a_config(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--controller", "c1:7070,c2:7070", "--state-dir", str(tmp_path), "--compute-env", "gpu",
         "--vcpus", "1", "--memory-mib", "256", "--reserve-memory-mib", "56", "--label", "zone=z",
         "--fence-timeout", "4", "--kill-grace", "1.5"]
    )
    config = config_from_args(args)
    assert config.controllers == ("c1:7070", "c2:7070")
    assert config.compute_environment == "gpu"
    assert (config.vcpus, config.memory_mib) == (1.0, 200)
    assert dict(config.labels) == {"zone": "z"}
    assert (config.fence_timeout, config.kill_grace) == (4.0, 1.5)
    assert config.state_dir == tmp_path
    assert config.node_id == (tmp_path / "node-id").read_text().strip()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main() configures structlog for the process (bound to pytest's captured stderr): undo it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("restore_logging")
def test_main_reports_bad_flags_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--controller", "c:1", "--state-dir", str(tmp_path), "--vcpus", "100000"]) == 2
    assert "shoal agent: error: --vcpus 100000 is more than this host has" in capsys.readouterr().err
