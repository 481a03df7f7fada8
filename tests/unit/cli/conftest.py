from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.unit.cli.canned import Answer, Canned
from tests.unit.cli.fake_batch import FakeBatch


@pytest.fixture
def fake() -> Iterator[FakeBatch]:
    server = FakeBatch().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake2() -> Iterator[FakeBatch]:
    """A second replica, for leader redirects and failover."""
    server = FakeBatch().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_ambient_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own SHOAL_ADDR must not leak into the tests.
    monkeypatch.delenv("SHOAL_ADDR", raising=False)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def shoal(capsys: pytest.CaptureFixture[str]):
    """Run `shoal ARGV...` in-process; returns its exit code, stdout and stderr."""
    from shoal.cli.main import main

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def canned() -> Iterator[Callable[[Answer], Canned]]:
    made: list[Canned] = []

    def make(answer: Answer) -> Canned:
        made.append(Canned(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()
