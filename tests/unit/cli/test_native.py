"""shoal's native front (shoal/native/front.c) against the Python CLI it stands in for.

Every check runs the same command line twice against the same canned HTTP edge: through the
front, and with SHOAL_NATIVE=0 (the front hands the line to the Python CLI untouched), and
compares what the edge received (method, token, the request as JSON) and what the user saw
(stdout, stderr, exit status). The front marks its own requests (User-Agent: shoal-native), so
a test also knows which of the two answered.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal import errors, native
from tests.unit.cli.canned import Canned, http

pytestmark = pytest.mark.unit

OK = http("200 OK", b'{"jobId": "5d0c6a4e-1f7b-4a53-9b0e-2f4f1f5d7c11", "jobName": "true"}')


def _env(addr: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    if addr is not None:
        env["SHOAL_ADDR"] = addr
    env.update(extra)
    return env


def _run(front: str, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    proc = subprocess.run([front, *argv], env=env, capture_output=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _seen(request: bytes) -> dict[str, object]:
    """What matters of a request: its request line, token and body (as JSON); who sent it."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return {
        "line": lines[0],
        "host": headers.get("host"),
        "authorization": headers.get("authorization"),
        "content-type": headers.get("content-type"),
        "body": json.loads(body),
        "native": headers.get("user-agent") == "shoal-native",
    }


def compare(front: str, server: Canned, argv: list[str], env: dict[str, str]) -> tuple[list[dict], tuple]:
    """Run argv through the front, then through the Python CLI; assert both did and said the same.
    Returns the front's requests and its outcome."""
    before = len(server.requests)
    got = _run(front, argv, env)
    mine = [_seen(r) for r in server.requests[before:]]
    middle = len(server.requests)
    want = _run(front, argv, {**env, "SHOAL_NATIVE": "0"})
    theirs = [_seen(r) for r in server.requests[middle:]]
    assert got == want, argv
    assert not any(r["native"] for r in theirs)
    def plain(requests: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "native"} for r in requests]

    own = [r for r in mine if r["native"]]
    handed = [r for r in mine if not r["native"]]
    assert mine == own + handed, argv  # the front asks first, if at all
    if handed or not own:
        # Handed over: the Python CLI did it all (after a follower's refusal, at most).
        assert plain(handed) == plain(theirs), argv
    else:
        # The front answered itself: with one request, the one the Python CLI sends.
        assert plain(own) == plain(theirs), argv
    return mine, got


@pytest.fixture
def edge(canned: Callable) -> Canned:  # noqa: ANN001
    return canned(lambda _: OK)


PLAIN = [
    ["submit", "--", "true"],
    ["submit", "--", "/usr/bin/env", "A=1"],
    ["submit", "-q", "default", "-n", "etl-7", "--vcpus", "0.5", "--memory", "256", "--", "sh", "-c", "echo $A; exit 3"],
    ["submit", "--queue=gpu", "--name=x", "--vcpus=2", "--memory=1024", "--timeout", "60", "--retry-attempts", "3", "--", "x"],
    ["submit", "-e", "A=1", "-e", "B=", "--env", "C=x=y", "-e", "A=2", "--", "printenv"],
    ["submit", "-d", "etl:3", "-p", "in=s3://b/k", "-p", "out=x", "--parameter", "in=y"],
    ["submit", "--definition", "etl", "--image", "localhost/busybox", "--runtime", "podman", "--", "-"],
    ["submit", "-o", "json", "--", "./a.out", "--flag", "--", "x"],
    ["submit", "--output", "JSON", "-n", "named", "--", "true"],
    ["submit", "--runtime", "", "--", "///"],
    ["--token", "t0k", "submit", "--", "true"],
    ["submit", "--token=abc", "--", "true"],
    ["submit", "--", "we!rd//name\twith\"quotes\\and\nlines"],
    ["submit", "--", ""],
    ["submit", "--", "-leading-dash", "tab\there"],
    ["submit", "--name", "-", "--", "true"],
    ["submit", "--vcpus", "007.250", "--memory", "0012", "--", "true"],
    ["submit", "--depends-on", "5d0c6a4e-1f7b-4a53-9b0e-2f4f1f5d7c11", "--depends-on", "abc:7:n_to_n", "--array-size", "4",
     "--array-parallelism", "2", "--", "x"],
    ["submit", "--array-size=10", "--depends-on", "SEQUENTIAL", "--", "x"],
    ["submit", "--depends-on", " :sequential ", "--depends-on=abc:AFTER_NOT_OK", "--depends-on", "a:after_any", "--", "x"],
]  # fmt: skip


@pytest.mark.parametrize("argv", PLAIN, ids=lambda a: " ".join(a)[:60])
def test_plain_submissions_are_sent_by_the_front_as_the_python_cli_sends_them(native_front: str, edge: Canned, argv: list[str]) -> None:
    mine, (code, out, err) = compare(native_front, edge, argv, _env(edge.url))
    assert [r["native"] for r in mine] == [True]
    assert mine[0]["line"] == "POST /shoal.v1.Batch/SubmitJob HTTP/1.1" and mine[0]["content-type"] == "application/json"
    assert code == 0 and err == b""
    assert out == (b"5d0c6a4e-1f7b-4a53-9b0e-2f4f1f5d7c11\n" if "json" not in " ".join(argv).lower() else
                   b'{\n  "jobId": "5d0c6a4e-1f7b-4a53-9b0e-2f4f1f5d7c11",\n  "jobName": "true"\n}\n')  # fmt: skip


HANDED_OVER = [
    ["--help"],
    ["--version"],
    ["describe", "5d0c6a4e-1f7b-4a53-9b0e-2f4f1f5d7c11"],
    ["submit"],  # nothing to run: the Python CLI's usage error
    ["submit", "--wait", "--", "true"],
    ["submit", "--array-size", "1", "--", "true"],
    ["submit", "--array-parallelism", "2", "--", "true"],
    ["submit", "--depends-on", ":N_TO_N", "--", "true"],
    ["submit", "--depends-on", " ", "--", "true"],
    ["submit", "true"],  # the command must go after --
    ["submit", "--nam", "x", "--", "true"],  # an abbreviation: argparse's
    ["submit", "-qdefault", "--", "true"],
    ["submit", "-q=default", "--", "true"],
    ["submit", "--vcpus", "1e3", "--", "true"],
    ["submit", "--vcpus", "0", "--", "true"],
    ["submit", "--memory", "+5", "--", "true"],
    ["submit", "--memory", "-5", "--", "true"],
    ["submit", "--retry-attempts", "11", "--", "true"],
    ["submit", "--runtime", "lxc", "--", "true"],
    ["submit", "-o", "yaml", "--", "true"],
    ["submit", "-e", "=x", "--", "true"],
    ["submit", "-e", "novalue", "--", "true"],
    ["submit", "--name", "caf\u00e9", "--", "true"],  # not ASCII: the Python CLI decodes by the locale
    ["submit", "--ca", "/nonexistent.pem", "--", "true"],
    ["submit", "--gpus", "1", "--", "true"],
    ["submit", "--from-file", "/nonexistent.jsonl"],
    ["submit", "--token"],
]


@pytest.mark.parametrize("argv", HANDED_OVER, ids=lambda a: " ".join(a)[:60])
def test_everything_else_is_handed_to_the_python_cli(native_front: str, edge: Canned, argv: list[str]) -> None:
    mine, _ = compare(native_front, edge, argv, _env(edge.url))
    assert not any(r["native"] for r in mine)


def test_shoal_native_0_hands_every_call_over(native_front: str, edge: Canned) -> None:
    code, _, _ = _run(native_front, ["submit", "--", "true"], _env(edge.url, SHOAL_NATIVE="0"))
    assert code == 0 and [_seen(r)["native"] for r in edge.requests] == [False]


_FLAGS = ["-q", "--queue", "-n", "--name", "-d", "--definition", "--vcpus", "--memory", "--image", "--runtime",
          "-e", "--env", "-p", "--parameter", "--retry-attempts", "--timeout", "-o", "--output", "--token",
          "--addr", "-h", "--array-size", "--array-parallelism", "--depends-on", "--quiet"]  # fmt: skip
_VALUES = ["default", "gpu", "etl-7", "", "-", "-x", "0", "1", "2", "10", "11", "007", "0.5", "1.0", ".5", "1e3",
           " 5", "+5", "abc", "A=1", "=x", "B=", "K=v=w", "process", "podman", "nope", "JSON", "table", "json",
           "caf\u00e9", "a b", 'a"b\\c', "\t", "x\ny", "etl:3", "http://127.0.0.1:1", "--", "true", "SEQUENTIAL",
           "x:N_TO_N", ":after_any", "y:z:AFTER_NOT_OK"]  # fmt: skip
_COMMAND = ["true", "sh", "-c", "echo hi", "/usr/bin/env", "./a.out", "///", "", "--flag", "x/", "a\u00e9b"]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    words: list[str] = []
    if draw(st.booleans()):
        words += draw(st.sampled_from([["--token", "t"], ["--token=t t"], ["--addr", "http://127.0.0.1:1"]]))
    words.append("submit")
    for _ in range(draw(st.integers(0, 6))):
        flag = draw(st.sampled_from(_FLAGS))
        value = draw(st.sampled_from(_VALUES))
        kind = draw(st.sampled_from(["apart", "joined", "bare"]))
        words += [flag, value] if kind == "apart" else [f"{flag}={value}"] if kind == "joined" else [flag]
    if draw(st.booleans()):
        words.append("--")
        words += draw(st.lists(st.sampled_from(_COMMAND), max_size=4))
    return words


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=command_lines())
def test_generated_command_lines_do_and_say_the_same_both_ways(native_front: str, edge: Canned, argv: list[str]) -> None:
    compare(native_front, edge, argv, _env(edge.url))


def _refusal(status: str, body: bytes, extra: str = "") -> bytes:
    return http(status, body, extra=extra)


def _chunked(*pieces: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nshoal-api: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


ANSWERS = {
    "invalid argument": _refusal("400 Bad Request", b'{"code": "invalid_argument", "message": "jobName:  bad\\n  name"}'),
    "unicode whitespace": _refusal("404 Not Found", b'{"code": "not_found", "message": "queue \\u00e9\\u2003x\\u3000y gone"}'),
    "surrogate pair": _refusal("404 Not Found", b'{"code": "not_found", "message": "\\ud83d\\ude00 gone"}'),
    "unavailable": _refusal("503 Service Unavailable", b'{"code": "unavailable", "message": "no leader yet"}'),
    "deadline": _refusal("504 Gateway Timeout", b'{"code": "deadline_exceeded", "message": "slow"}'),
    "internal": _refusal("500 Internal Server Error", b'{"code": "internal", "message": "boom"}'),
    "no message": _refusal("401 Unauthorized", b'{"code": "unauthenticated"}'),
    "empty message": _refusal("403 Forbidden", b'{"code": "permission_denied", "message": ""}'),
    "not the edge's form": _refusal("500 Internal Server Error", b"<html>  oops\n</html>"),
    "rate limited": _refusal("429 Too Many Requests", b'{"code": "resource_exhausted", "message": "slow down", "x": [1, {"y": null}]}'),
    "chunked": _chunked(b'{"job', b'Id": "7a1e", "jobName": "t", ', b'"other": {"a": [true, -1.5e3]}}'),
    "until close": b'HTTP/1.1 200 OK\r\nshoal-api: 1\r\n\r\n{"jobName": "t", "jobId": "8b2f"}',
    "empty body": http("200 OK", b""),
    "escaped id": http("200 OK", b'{"jobId": "a\\"b\\\\c\\u0001", "jobName": "\\u00e9"}'),
}  # fmt: skip


@pytest.mark.parametrize("output", ["table", "json"])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_answers_and_refusals_are_reported_as_the_python_cli_reports_them(
    native_front: str, canned: Callable, name: str, output: str
) -> None:
    server = canned(lambda _: ANSWERS[name])
    mine, (code, out, err) = compare(native_front, server, ["submit", "-o", output, "--", "true"], _env(server.url))
    assert [r["native"] for r in mine] == [True]
    if name in ("unavailable", "deadline"):
        assert code == 4
    elif "200 OK" not in ANSWERS[name].split(b"\r\n")[0].decode():
        assert code == 3 and out == b"" and err.startswith(b"shoal: ") and err.count(b"\n") == 1


def test_a_follower_naming_its_leader_is_handed_over(native_front: str, canned: Callable) -> None:
    body = b'{"code": "unavailable", "message": "not the leader", "leader": "127.0.0.1:1"}'
    server = canned(lambda _: http("503 Service Unavailable", body))
    mine, (code, _, err) = compare(native_front, server, ["submit", "--", "true"], _env(server.url))
    # The front asked, was refused (nothing applied), and the Python CLI went to the leader over gRPC.
    assert [r["native"] for r in mine] == [True, False]
    assert code == 4 and b"127.0.0.1:1" in err


def test_a_broken_connection_after_sending_is_reported_never_resent(native_front: str, canned: Callable) -> None:
    first = canned(lambda _: None)  # takes the request, closes without an answer
    second = canned(lambda _: OK)
    env = _env(f"{first.url},{second.url}")
    mine, (code, out, err) = compare(native_front, first, ["submit", "--", "true"], env)
    assert [r["native"] for r in mine] == [True] and second.requests == []
    assert (code, out) == (4, b"")
    assert err == (f"shoal: lost the connection to {first.url} (connection closed before an answer); "
                   "the request may have been applied\n").encode()  # fmt: skip


def _dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    return url


def test_a_refused_connection_moves_on_to_the_next_edge(native_front: str, edge: Canned) -> None:
    host, port = edge.url.removeprefix("http://").split(":")
    env = _env(f"{_dead_url()}, http://{host}:00{port}/ ,127.0.0.1:1")
    mine, (code, _, _) = compare(native_front, edge, ["submit", "--", "true"], env)
    assert code == 0 and [r["native"] for r in mine] == [True]


def test_no_edge_answering_is_handed_over(native_front: str, canned: Callable) -> None:
    dead = _dead_url()
    not_shoal = canned(lambda _: http("404 Not Found", b"", shoal=False))
    for addr in (dead, f"{dead},127.0.0.1:1", not_shoal.url, "127.0.0.1:1", "https://127.0.0.1:1", "ftp://x"):
        mine, (code, _, err) = compare(native_front, not_shoal, ["submit", "--", "true"], _env(addr))
        assert code in (3, 4) and err.startswith(b"shoal: "), addr
        assert all(not r["native"] for r in mine[1:])


def test_tokens_are_found_where_the_python_cli_finds_them(native_front: str, edge: Canned, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  from-file \r\nsecond line\n")
    cases = [
        ({"SHOAL_TOKEN": "  from-env\t"}, []),
        ({"SHOAL_TOKEN": "from-env"}, ["--token", "from-flag"]),
        ({"SHOAL_TOKEN_FILE": str(token_file)}, []),
        ({"SHOAL_TOKEN": "", "SHOAL_TOKEN_FILE": str(token_file)}, []),
        ({"SHOAL_TOKEN_FILE": str(token_file)}, ["--token="]),
        ({"SHOAL_TOKEN_FILE": str(tmp_path / "missing")}, []),  # handed over: the Python CLI's error
        ({}, []),
    ]
    auth = []
    for extra, flags in cases:
        mine, _ = compare(native_front, edge, [*flags, "submit", "--", "true"], _env(edge.url, **extra))
        auth.append(mine[0]["authorization"] if mine else None)
    assert auth == ["Bearer from-env", "Bearer from-flag", "Bearer from-file", "Bearer from-file",
                    "Bearer from-file", None, None]  # fmt: skip


def test_the_front_builds_without_warnings(tmp_path: Path) -> None:
    strict = ["-Werror", "-Wpedantic", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"]
    out = native.build(tmp_path / "shoal", sys.executable, extra_flags=strict)
    assert os.access(out, os.X_OK)


def test_build_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(native.BuildError, match="cannot run /nonexistent/cc"):
        native.build(tmp_path / "shoal", sys.executable, cc="/nonexistent/cc")
    with pytest.raises(native.BuildError, match="could not build front.c"):
        native.build(tmp_path / "shoal", sys.executable, extra_flags=["-DSHOAL_PYTHON_BROKEN=(", "-include", "/nonexistent.h"])
    assert not (tmp_path / "shoal").exists()
    proc = subprocess.run([sys.executable, "-m", "shoal.native", "--out", str(tmp_path / "x"), "--cc", "/nonexistent/cc"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("shoal.native: cannot run")


def test_if_needed_builds_only_what_changed(tmp_path: Path) -> None:
    def install(python: str) -> str:
        argv = [sys.executable, "-m", "shoal.native", "--if-needed", "--out", str(tmp_path / "shoal"), "--python", python]
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        return proc.stdout.split(" ", 1)[0]

    assert install(sys.executable) == "installed"
    assert install(sys.executable) == "up"  # up to date
    assert native.is_current(tmp_path / "shoal", sys.executable)
    assert install("/usr/bin/python3") == "installed"  # another interpreter: built again
    (tmp_path / "shoal").write_text("#!/usr/bin/python3\n# pip's console script\n")
    assert install("/usr/bin/python3") == "installed"


@pytest.mark.parametrize("native_mode", ["1", "0"])
def test_ctrl_c_while_waiting_for_the_answer_exits_130(native_front: str, canned: Callable, native_mode: str) -> None:
    import signal
    import threading

    got, release = threading.Event(), threading.Event()

    def hold(_: bytes) -> None:
        got.set()
        release.wait(60)

    server = canned(hold)
    try:
        proc = subprocess.Popen([native_front, "submit", "--", "true"], env=_env(server.url, SHOAL_NATIVE=native_mode),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        assert got.wait(60), "the request never arrived"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        release.set()
    assert proc.returncode == 130 and err == b""
    assert [_seen(r)["native"] for r in server.requests] == [native_mode == "1"]


_HEADS = [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request", b"HTTP/1.0 503 x", b"HTTP/1.1 200", b"HTTP/1.1 abc",
          b"ICY 200 OK", b"", b"HTTP/1.1 99999999999 x"]  # fmt: skip
_HEADERS = [b"shoal-api: 1", b"Shoal-Api:1", b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: x",
            b"Content-Length: 99999999", b"Transfer-Encoding: chunked", b"shoal-leader: 127.0.0.1:1", b"X: y"]  # fmt: skip
_BODIES = [b"", b"{}", b"[]", b'{"jobId": "a"}', b'{"code": "invalid_argument", "message": "m"}', b'{"code": 5}',
           b'{"jobId": "\\ud800"}', b'{"a": [1, 2, {"b": "\\u00"}]}', b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n",
           b"ffffffffffffffff\r\nx", b"{" * 100, b'"' * 3, b"\xff\xfe\x00", b'{"jobId": "a", "jobId": 7}']  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(head=st.sampled_from(_HEADS), headers=st.lists(st.sampled_from(_HEADERS), max_size=4),
       body=st.lists(st.sampled_from(_BODIES), max_size=3), close_early=st.booleans())  # fmt: skip
def test_whatever_a_peer_answers_the_front_ends_with_a_status_never_a_crash(
    native_front: str, head: bytes, headers: list[bytes], body: list[bytes], close_early: bool
) -> None:
    answer = b"\r\n".join([head, *headers]) + (b"" if close_early else b"\r\n\r\n" + b"".join(body))
    server = Canned(lambda _: answer)
    try:
        code, _, err = _run(native_front, ["submit", "--", "true"], _env(server.url))
    finally:
        server.close()
    assert code in (0, 3, 4, 70), (answer, code, err)  # not killed by a signal


def test_the_default_target_is_replaced_only_when_it_is_shoal_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "shoal"
    monkeypatch.setattr(native, "default_target", lambda: target)
    target.write_text("#!/bin/sh\necho another program called shoal\n")
    assert native.main([]) == 1
    assert capsys.readouterr().err == f"shoal.native: {target} is not shoal's console script; say where with --out\n"
    assert target.read_text().startswith("#!/bin/sh")
    target.write_text("#!/venv/bin/python\nimport sys\nfrom shoal.cli.main import main\nsys.exit(main())\n")
    assert native.main([]) == 0 and native.is_current(target, sys.executable)
    assert native.main(["--if-needed"]) == 0 and capsys.readouterr().out.endswith(f"up to date: {target}\n")


@pytest.mark.parametrize("code", sorted({*errors._BY_NAME, "INTERNAL", "CANCELLED", "teapot"}))
def test_every_error_code_reads_as_in_the_python_cli(native_front: str, canned: Callable, code: str) -> None:
    # front.c keeps its own list of the codes shoal.errors has a class for: a code added there
    # and not here would read differently, and fail this test.
    body = json.dumps({"code": code.lower(), "message": "why"}).encode()
    server = canned(lambda _: http("400 Bad Request", body))
    mine, (status, _, err) = compare(native_front, server, ["submit", "--", "true"], _env(server.url))
    assert [r["native"] for r in mine] == [True] and status in (3, 4) and err.startswith(b"shoal: ")
