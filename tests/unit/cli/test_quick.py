"""The CLI's quick path: the argparse-free parser agrees with argparse, and the hot commands load
none of the heavy modules (the property start-up time depends on; tests never time anything)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.cli import quick, values, wire
from shoal.cli.jobs import derive_job_name
from shoal.cli.main import build_parser
from shoal.cli.render import shell_quote
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit

# Words a command line of the hot commands is made of, valid and not, so that generated lines
# cover what the quick parser takes and what it must leave to argparse.
_OPTIONS = [
    "-q", "--queue", "-n", "--name", "-d", "--definition", "--vcpus", "--memory", "--image", "--runtime",
    "-e", "--env", "--array-size", "--array-parallelism", "--depends-on", "-p", "--parameter",
    "--retry-attempts", "--timeout", "--wait", "-f", "--from-file", "--addr", "-o", "--output", "-s",
    "--status", "--name-prefix", "--quiet", "-h", "--help", "--que", "-x", "--",
]  # fmt: skip
_VALUES = [
    "x", "a=b", "=b", "0.5", "2", "0", "-1", "1e3", "inf", "two", "json", "JSON", "table", "yaml", "",
    "process", "podman", "running", "FAILED", "JOB_STATUS_RUNNABLE", "done", "abc:N_TO_N", "SEQUENTIAL",
    "http://127.0.0.1:1", "-", "--queue=q", "--vcpus=1", "--memory=", "-q=x", "true", "sh", "-c",
]  # fmt: skip
_WORDS = st.sampled_from(_OPTIONS + _VALUES)
_COMMANDS = st.sampled_from([["submit"], ["describe"], ["wait"], ["jobs", "list"]])


def _argparse(argv: list[str]) -> dict[str, object] | None:
    """What the full parser makes of argv, or None where it refuses it."""
    from shoal.cli.console import UsageError

    try:
        args, extras = build_parser(argv).parse_known_args(argv)
    except (UsageError, SystemExit):
        return None
    if extras:
        return None
    return vars(args)


@settings(max_examples=400, deadline=None)
@given(command=_COMMANDS, words=st.lists(_WORDS, max_size=8))
def test_the_quick_parser_agrees_with_argparse_or_declines(command: list[str], words: list[str]) -> None:
    argv = [*command, *words]
    parsed = quick.parse(argv)
    if parsed is None:
        return
    expected = _argparse(argv)
    assert expected is not None, f"quick parsed what argparse refuses: {argv}"
    assert vars(parsed) == expected, argv


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "--", "true"],
        ["submit", "-q", "gpu", "--vcpus", "0.5", "--memory=512", "-e", "A=1", "-e", "B=", "--wait", "--", "sh", "-c", "x -- y"],
        ["submit", "--depends-on", "abc:N_TO_N", "--array-size", "4", "-p", "in=a", "--output", "JSON", "--", "cat"],
        ["submit", "--from-file", "-"],
        ["describe", "a", "b", "-o", "json"],
        ["wait", "--timeout", "5", "a"],
        ["jobs", "list", "-s", "running", "--quiet", "--addr", "http://h:1"],
    ],
)
def test_common_command_lines_take_the_quick_path(argv: list[str]) -> None:
    parsed = quick.parse(argv)
    assert parsed is not None
    assert vars(parsed) == _argparse(argv)


@pytest.mark.parametrize(
    "argv",
    [["submit", "--help"], ["submit", "sleep", "1"], ["submit", "--vcpus", "two", "--", "x"], ["describe"],
     ["describe", "a", "-o", "json", "b"], ["jobs"], ["nodes", "list"], ["submit", "--que", "x", "--", "y"]],
)  # fmt: skip
def test_what_argparse_must_answer_is_left_to_it(argv: list[str]) -> None:
    assert quick.parse(argv) is None


def test_the_enum_names_the_cli_knows_are_the_api_s() -> None:
    statuses = [n.removeprefix("JOB_STATUS_") for n in types_pb2.JobStatus.keys() if not n.endswith("UNSPECIFIED")]
    assert list(values.JOB_STATUSES) == statuses
    deps = [n.removeprefix("DEPENDENCY_TYPE_") for n in types_pb2.DependencyType.keys() if not n.endswith("UNSPECIFIED")]
    assert list(values.DEPENDENCY_TYPES) == deps


def test_the_cli_default_address_is_the_sdk_s() -> None:
    from shoal import client
    from shoal.cli import console

    assert (console.ADDRESS_ENV, console.DEFAULT_ADDRESS) == (client.ADDRESS_ENV, client.DEFAULT_ADDRESS)


@given(st.text(max_size=20))
def test_shell_quote_is_shlex_quote(word: str) -> None:
    assert shell_quote(word) == shlex.quote(word)


@given(st.lists(st.text(max_size=12), min_size=1, max_size=2))
def test_derived_job_names_replace_runs_of_other_characters_as_before(command: list[str]) -> None:
    head = command[0].rstrip("/")
    base = head.rpartition("/")[2] or command[0]
    expected = re.sub(r"[^A-Za-z0-9_-]+", "-", base).lstrip("-_")[:128].rstrip("-") or "job"
    assert derive_job_name(command) == expected


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_the_wire_json_is_the_stdlib_s(value: object) -> None:
    text = wire.dumps(value)
    assert text == json.dumps(value, separators=(",", ":"))
    assert wire.loads(text) == json.loads(text)


def test_wire_json_refuses_what_json_refuses() -> None:
    for text in ("{", "[1,]", "{} x", ""):
        with pytest.raises(ValueError):
            wire.loads(text)


# Modules whose import the quick path exists to avoid (each costs a short-lived process ms to
# 100s of ms on a small VM). Checked in a fresh interpreter: what a shell loop runs.
_HEAVY = ("grpc", "google.protobuf", "argparse", "re", "json", "socket", "yaml", "cryptography", "asyncio", "typing")


def _modules_after(code: str) -> set[str]:
    probe = (
        "import sys\n" + code + "\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "SHOAL_ADDR": "http://127.0.0.1:1"})
    assert proc.stdout, proc.stderr
    return set(proc.stdout.split())


def test_submit_over_http_loads_no_heavy_module() -> None:
    loaded = _modules_after("from shoal.cli.main import main\nassert main(['submit', '--', 'true']) == 4")
    assert "shoal.cli.wire" in loaded  # it did take the HTTP path (and found nothing listening)
    assert sorted(m for m in loaded if m.split(".")[0] in _HEAVY or m in _HEAVY) == []


def test_help_loads_neither_grpc_nor_protobuf() -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom shoal.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['--help']) == 0"
    )
    assert "argparse" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in ("grpc", "google", "yaml", "cryptography")) == []
