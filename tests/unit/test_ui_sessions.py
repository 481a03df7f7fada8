"""Dashboard sessions (controller/http/ui/sessions.py): expiry, logout, the size bound, CSRF."""

from __future__ import annotations

import pytest

from controller.api import auth
from controller.http.ui import sessions as S

pytestmark = pytest.mark.unit

READER = auth.Principal(name="viewer", role=auth.READER)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_found_by_its_id_and_carries_its_principal() -> None:
    store = S.SessionStore(Clock())
    session = store.create(READER)
    assert store.get(session.session_id) is session
    assert session.principal == READER and session.authenticated
    assert store.get("") is None and store.get("no-such-id") is None
    assert len(session.session_id) >= 40 and len(session.csrf) >= 40 and session.csrf != session.session_id


def test_sessions_end_when_idle_or_too_old_or_dropped() -> None:
    clock = Clock()
    store = S.SessionStore(clock)
    idle = store.create(READER)
    clock.now += S.IDLE_SECONDS + 1
    assert store.get(idle.session_id) is None

    busy = store.create(READER)
    for _ in range(int(S.MAX_AGE_SECONDS // S.IDLE_SECONDS) + 1):
        clock.now += S.IDLE_SECONDS - 1
        store.get(busy.session_id)
    assert store.get(busy.session_id) is None and not store.alive(busy), "used all along, but past its maximum age"

    gone = store.create(READER)
    assert store.alive(gone)
    store.drop(gone.session_id)
    assert store.get(gone.session_id) is None and not store.alive(gone)


def test_the_number_of_sessions_is_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "MAX_SESSIONS", 3)
    store = S.SessionStore(Clock())
    made = [store.create(None) for _ in range(5)]
    assert len(store) == 3
    assert [store.get(s.session_id) is not None for s in made] == [False, False, True, True, True]


def test_csrf_token_must_match_exactly() -> None:
    session = S.SessionStore(Clock()).create(READER)
    assert S.csrf_matches(session, session.csrf)
    for wrong in (None, "", session.csrf[:-1], session.csrf + "x", session.session_id):
        assert not S.csrf_matches(session, wrong)
