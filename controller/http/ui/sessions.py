"""Dashboard sessions: who a browser is, and the CSRF token its page must send with every action.

A session is a random id, kept in an HttpOnly, SameSite=Strict cookie, that maps to a
`Principal` in this replica's memory. The bearer token itself is seen only once, by the login
request, and never stored, sent back or put in a cookie. Why a server-side id rather than the
token sealed in the cookie: a stolen cookie is then worth nothing against the gRPC API (it is
not a token), logout and expiry take effect on the server at once, and no sealing key has to be
made, kept and rotated per cluster. The price is that a session lives on one replica: a browser
that talks to another replica logs in there again, which is how the dashboard is addressed
anyway (each replica serves its own `/ui/`).

Without a tokens file (authentication off, `shoal up` on loopback) every browser still gets a
session, as the anonymous admin, so that actions carry a CSRF token all the same: a page on
another site must not be able to make a loopback dashboard cancel jobs.

Pure bookkeeping, no I/O: the clock is injected.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from controller.api import auth

COOKIE = "shoal_session"
CSRF_HEADER = "X-Shoal-CSRF"
# A session ends this long after login (or, without authentication, after it was made), and
# after this long without a request.
MAX_AGE_SECONDS = 12 * 3600
IDLE_SECONDS = 2 * 3600
# Sessions kept per replica; the oldest are dropped first (a flood of logins or of anonymous
# visits cannot grow memory without bound).
MAX_SESSIONS = 10_000


@dataclass
class Session:
    session_id: str
    principal: auth.Principal | None
    """None until a token was accepted (authentication on)."""
    csrf: str
    created: float
    last_used: float

    @property
    def authenticated(self) -> bool:
        return self.principal is not None


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, principal: auth.Principal | None) -> Session:
        now = self._clock()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session = Session(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32), now, now)
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle timer restarted), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.created > MAX_AGE_SECONDS or now - session.last_used > IDLE_SECONDS:
            del self._sessions[session_id]
            return None
        session.last_used = now
        return session

    def alive(self, session: Session) -> bool:
        """Still valid (not logged out, not expired): long-lived event streams ask this."""
        return self._sessions.get(session.session_id) is session and (
            self._clock() - session.created <= MAX_AGE_SECONDS
        )

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


def csrf_matches(session: Session, presented: str | None) -> bool:
    return bool(presented) and secrets.compare_digest(session.csrf, presented or "")
