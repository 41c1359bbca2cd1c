"""Live sessions: a socket lives no longer than its token, can refresh it, and can be revoked.

Each socket's token times are kept in a registry per process (a small slotted object per
socket, no greenlet and no timer per socket): ``token_expiring`` is due ``SESSION_REFRESH_WINDOW``
seconds before ``exp`` (at once if less is left), the end at ``exp + JWT_LEEWAY``. One sweeper
per process (a background task, running while the process holds sockets) sleeps until the
first deadline of its heap or its next revocation re-read is due, whichever comes first, and
pops what is due; rounds are at least ``RESOLUTION`` seconds apart, so a deadline is kept within
``RESOLUTION`` plus the time to end the socket, on websocket and long-polling alike, and
nothing is checked per client event. A deadline pushed earlier than the planned wake wakes it.
With tokens that last hours a process so wakes once per ``REFRESH_SECONDS``, not four times a
second (an idle process's wake-ups count in the summed CPU of many processes).

Ending a socket: it is taken offline in presence first (so what is sent to its user from then
on waits as ``pending``, unless another socket of theirs is online), then gets ``session_ended
{code}`` and a Socket.IO disconnect from the server (the JS client does not reconnect by itself
after one). A socket still in its handshake when its end comes is ended once connected.

Heap entries of sessions that refreshed or left stay until their time comes and are skipped;
when they outnumber the live ones the heap is rebuilt, so a process whose sockets come and go
with 30-day tokens does not accumulate them.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from app.errors import ApiError, ErrorCode, Unauthorized
from app.extensions import socketio
from app.models import iso
from app.observability import metrics
from app.observability.logging import logged_event
from app.payloads.models import RefreshRequest
from app.registry import services
from app.security.tokens import Claims, TokenProblem, TokenRefused, verify
from app.services import revocations
from app.services.presence import presence
from app.services.rate_limits import socket_limits
from app.services.validation import require_object
from app.sockets import lifecycle
from app.sockets.context import current_event
from app.sockets.dispatch import server_event
from app.sockets.sessions import current_user

log = logging.getLogger(__name__)
#: Least seconds between the sweeper's rounds: how late, at most, a deadline is noticed.
RESOLUTION = 0.25
#: Skipped heap entries tolerated before the heap is rebuilt (and only when they are the most).
COMPACT_AFTER = 1024
EXPIRING_EVENT = "token_expiring"
ENDED_EVENT = "session_ended"
TOKEN_EXPIRED = TokenProblem.EXPIRED.value
TOKEN_REVOKED = TokenProblem.REVOKED.value


class Session:
    """One socket's token: who, when issued, and its two times still to come (None once
    passed, or for a token without ``exp``)."""

    __slots__ = ("end_at", "end_code", "ending", "expires_at", "issued_at", "user", "warn_at")

    def __init__(self, claims: Claims) -> None:
        self.user = claims.user
        self.issued_at = claims.issued_at
        self.expires_at = claims.expires_at
        self.warn_at: float | None = None
        self.end_at: float | None = None
        self.end_code = TOKEN_EXPIRED
        #: Its end has come: a refresh can no longer save it.
        self.ending = False

    def entries(self) -> int:
        return (self.warn_at is not None) + (self.end_at is not None)


def expires_at_iso(expires_at: float | None) -> str | None:
    """``exp`` on the wire (ISO 8601 UTC, milliseconds, ``Z``)."""
    if expires_at is None:
        return None
    return iso(datetime.fromtimestamp(expires_at, UTC).replace(tzinfo=None))


class LiveSessions:
    """This process's sockets and their token deadlines (thread-safe: tests run handlers in
    threads; under gevent the lock is never contended)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.window: float = app.config["SESSION_REFRESH_WINDOW"]
        self.leeway: float = app.config["JWT_LEEWAY"]
        self._sessions: dict[str, Session] = {}
        self._heap: list[tuple[float, str]] = []
        self._skipped = 0
        self._lock = threading.Lock()
        self._sweeping = False
        self._next_refresh = 0.0
        #: When the sweeper plans its next round; a deadline pushed earlier sets ``_wake``.
        self._wake_at = math.inf
        self._wake = threading.Event()
        #: Sockets being ended now: a second end (expiry and revocation together) is a no-op.
        self._closing: set[str] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    # Registry

    def track(self, sid: str, claims: Claims) -> None:
        """A socket whose handshake token is ``claims``; its deadlines start now."""
        with self._lock:
            session = self._sessions[sid] = Session(claims)
            self._schedule(sid, session, time.time())
            start = not self._sweeping
            self._sweeping = True
        if start:
            socketio.start_background_task(self._sweep)

    def refresh(self, sid: str, claims: Claims) -> bool:
        """Move the socket's deadlines to the new token's; False if it has ended meanwhile."""
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or session.ending:
                return False
            if session.end_at is not None and session.end_at <= time.time():
                return False  # past its deadline: the sweeper's next round ends it
            self._skipped += session.entries()
            session.issued_at, session.expires_at = claims.issued_at, claims.expires_at
            session.end_code = TOKEN_EXPIRED
            self._schedule(sid, session, time.time())
            return True

    def untrack(self, sid: str) -> None:
        with self._lock:
            session = self._sessions.pop(sid, None)
            self._closing.discard(sid)
            if session is not None:
                self._skipped += session.entries()
            if not self._sessions:
                self._wake.set()  # the sweeper ends now, not at its planned round

    def matching(self, cutoffs: dict[str, float]) -> list[str]:
        """The sockets opened (or last refreshed) with a token revoked by ``cutoffs``."""
        with self._lock:
            return [
                sid
                for sid, session in self._sessions.items()
                if session.user in cutoffs and session.issued_at <= cutoffs[session.user]
            ]

    def _schedule(self, sid: str, session: Session, now: float) -> None:
        """Push the session's times (lock held)."""
        session.warn_at = session.end_at = None
        if session.expires_at is None:
            return
        session.end_at = session.expires_at + self.leeway
        session.warn_at = min(max(now, session.expires_at - self.window), session.end_at)
        self._push(session.warn_at, sid)
        self._push(session.end_at, sid)

    def _push(self, when: float, sid: str) -> None:
        """A deadline into the heap (lock held); wakes the sweeper if it planned to sleep past."""
        heapq.heappush(self._heap, (when, sid))
        if when < self._wake_at:
            self._wake.set()

    def _due(self, now: float) -> tuple[list[tuple[str, Session]], list[str]]:
        """Pop what is due: sockets to warn and sockets to end."""
        warn: list[tuple[str, Session]] = []
        end: list[str] = []
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] <= now:
                when, sid = heapq.heappop(heap)
                session = self._sessions.get(sid)
                if session is not None and session.end_at == when:
                    if session.warn_at is not None:
                        self._skipped += 1  # its warning is moot now
                    session.warn_at = session.end_at = None
                    session.ending = True
                    end.append(sid)
                elif session is not None and session.warn_at == when:
                    session.warn_at = None
                    warn.append((sid, session))
                else:
                    self._skipped -= 1
            if self._skipped > COMPACT_AFTER and self._skipped * 2 > len(heap):
                self._compact()
        return warn, end

    def _warn_later(self, sid: str, session: Session, when: float) -> None:
        with self._lock:
            if self._sessions.get(sid) is session and not session.ending:
                session.warn_at = when
                self._push(when, sid)

    def _compact(self) -> None:
        self._heap = [
            (when, sid)
            for sid, session in self._sessions.items()
            for when in (session.warn_at, session.end_at)
            if when is not None
        ]
        heapq.heapify(self._heap)
        self._skipped = 0

    # The sweeper

    def _sweep(self) -> None:
        """Until the process holds no socket: warn, end, and re-read revocations, each round
        when the first of them is due (see the module doc)."""
        last = time.time()
        while True:
            with self._lock:
                if not self._sessions:
                    self._sweeping = False
                    self._wake_at = math.inf
                    return
                first = self._heap[0][0] if self._heap else math.inf
                self._wake_at = max(min(first, self._next_refresh), last + RESOLUTION)
                self._wake.clear()
            delay = self._wake_at - time.time()
            if delay > 0 and self._wake.wait(delay):
                continue  # an earlier deadline was pushed: plan again
            last = time.time()
            try:
                self._sweep_once(last)
            except Exception:  # the loop must outlive any one failure, or no socket ever ends
                log.exception("live sessions sweep failed")

    def _sweep_once(self, now: float) -> None:
        warn, end = self._due(now)
        manager = socketio.server.manager
        for sid, session in warn:
            if manager.is_connected(sid, "/"):
                emit_to(sid, EXPIRING_EVENT, {"expiresAt": expires_at_iso(session.expires_at)})
            elif manager.is_pre_connected(sid, "/"):
                self._warn_later(sid, session, now + RESOLUTION)  # after its CONNECT packet
        for sid in end:
            socketio.start_background_task(self.end, sid)
        if now >= self._next_refresh:
            self._next_refresh = now + revocations.REFRESH_SECONDS
            socketio.start_background_task(self._reread_revocations)

    def _reread_revocations(self) -> None:
        """End the sockets of revocations this process had not heard of (Redis lost them)."""
        with self.app.app_context():
            try:
                moved = revocations.refresh_moved()
            except Exception as error:
                log.warning("revocations could not be re-read (%s)", type(error).__name__)
                return
            if moved:
                self.end_all(self.matching(moved), TOKEN_REVOKED)

    # Ending sockets

    def end_all(self, sids: list[str], code: str) -> int:
        return sum(self.end(sid, code) for sid in sids)

    def end(self, sid: str, code: str | None = None) -> bool:
        """Offline, ``session_ended``, disconnect; True when the socket is (or will be, once its
        handshake is over) ended. ``code`` None: the session's own (expiry, or a revocation
        that came during its handshake)."""
        server = socketio.server
        with self.app.app_context():
            with self._lock:
                session = self._sessions.get(sid)
                if session is None:
                    return False
                if code is not None:
                    session.end_code = code
                session.ending = True
                if not server.manager.is_connected(sid, "/"):
                    if not server.manager.is_pre_connected(sid, "/"):
                        return False
                    # Still in its handshake: ended by the sweeper's next round.
                    self._skipped += session.entries()
                    session.warn_at, session.end_at = None, time.time()
                    heapq.heappush(self._heap, (session.end_at, sid))
                    return True
                if sid in self._closing:
                    return False
                self._closing.add(sid)
                self._skipped += session.entries()  # nothing more is due for it
                session.warn_at = session.end_at = None
                code = session.end_code
            presence().remove(session.user, sid)
            emit_to(sid, ENDED_EVENT, {"code": code})
            server.disconnect(sid, namespace="/", ignore_queue=True)
            log.info("session of %s ended: %s", session.user, code)
            return True


def emit_to(sid: str, event: str, payload: dict[str, Any]) -> None:
    """Emit to one socket of this process, without a round trip through the message queue."""
    socketio.emit(event, payload, to=sid, ignore_queue=True)


def live_sessions() -> LiveSessions:
    return services().live_sessions


# The client's refresh


def refresh_token_of(raw: object) -> object:
    """The ``token`` of a ``refresh_token`` payload; validation_error for a malformed one."""
    return RefreshRequest.check(require_object(raw)).token


@server_event("refresh_token")
@logged_event
def on_refresh_token(*args: Any) -> dict[str, Any]:
    """Ack ``{success, expiresAt}`` and the socket's deadline moves to the new token's; a token
    that is not valid, or of another user, changes nothing."""
    user = current_user()
    with lifecycle.client_event():
        socket_limits().check_event(user)
        token = refresh_token_of(args[0] if args else None)
        try:
            claims = verify(token)
        except TokenRefused as refused:
            problem = (
                TokenProblem.INVALID if refused.problem is TokenProblem.MISSING else refused.problem
            )
            metrics.auth_refused(problem.value)
            raise Unauthorized(
                message="The new token was refused.", details={"token": problem.value}
            ) from None
        if claims.user != user:
            raise ApiError(ErrorCode.FORBIDDEN, "The new token is another user's.")
        event = current_event()
        if event is None or not live_sessions().refresh(event.sid, claims):
            raise Unauthorized(message="The session has ended.", details={"token": TOKEN_EXPIRED})
    return {"success": True, "expiresAt": expires_at_iso(claims.expires_at)}
