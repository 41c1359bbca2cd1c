"""Flask-Limiter overrides: headers on 429 only, and the limits of a route resolved once.

- Flask-Limiter writes the ``RateLimit-*`` and ``Retry-After`` headers on every response of a
  limited route when headers are enabled. That costs a second storage round trip per request
  (the window's reset time, read after the hit): on the webhook it was a fifth of the worker's
  time under load. The contract asks for them on a 429 only. ``Limiter.__inject_headers`` reads
  the private ``_headers_enabled`` attribute when it would add them; ``HeadersOn429Limiter``
  answers it with "only when the error handler flagged a 429".
- ``LimitManager.resolve_limits`` works out, on every request, which limits apply to the
  endpoint: it walks the decorated, blueprint, default and application limit groups, re-parses
  each group's limit string into ``RuntimeLimit`` objects (``limits.parse_many``) and computes
  the blueprint exemption scopes, twice (``exemption_scope`` again for the meta limits). None of
  that changes after the routes are registered when every limit is a fixed string, as here: it
  was 0.17 ms of the webhook's 0.93 ms (py-spy). ``MemoisedLimitManager`` keeps each answer
  until a limit or an exemption is added. A limit given as a callable (a dynamic limit) turns
  the memo off. What is evaluated per request (``exempt_when``, the key functions, the storage
  hit) is untouched: the memo holds the same ``RuntimeLimit`` objects upstream would rebuild.
"""

from __future__ import annotations

import itertools
from typing import Any

import flask_limiter
from flask import g, has_request_context
from flask_limiter._manager import LimitManager

from app.patches.fence import fence

fence(
    "flask_limiter._extension.Limiter._Limiter__inject_headers",
    "aa6d828bc55063a1525eff3d853151ab3133ec4a644327a6e29af9c008b222bd",
    "relied on: reads _headers_enabled before adding the headers",
)
fence(
    "flask_limiter._extension.Limiter.__init__",
    "7f08fab5e03c30b20fbc8c0e069bd5c427428391ca0f36d4d4ddfe98a352d16e",
    "relied on: makes self.limit_manager, a LimitManager",
)
fence(
    "flask_limiter._manager.LimitManager.resolve_limits",
    "8ddb143e2e2f317ba4a6c41507bf67b3ce557bd7dd0c7d12922ec55068595933",
    "memoised: the answer depends on the registered limits and exemptions only",
)
fence(
    "flask_limiter._manager.LimitManager.exemption_scope",
    "373f3eca8c75231faa5f3988dd156d6e394e670599b71557f148f0470bb588cc",
    "memoised: the answer depends on the registered exemptions only",
)

#: ``g`` flag set by the error handler on a 429 response.
RATE_LIMITED = "notify_rate_limited"
#: LimitManager methods that change what resolve_limits answers.
_CHANGES = (
    "set_application_limits",
    "set_default_limits",
    "add_decorated_limit",
    "add_blueprint_limit",
    "add_route_exemption",
    "add_blueprint_exemption",
    "add_endpoint_hint",
)


def _unproxied(app: Any) -> Any:
    """The app itself: Flask-Limiter passes ``current_app``, a proxy that would compare equal to
    whichever app is current when the memo is read."""
    real = getattr(app, "_get_current_object", None)
    return real() if real is not None else app


class MemoisedLimitManager(LimitManager):  # type: ignore[misc]
    """``LimitManager`` answering ``resolve_limits`` and ``exemption_scope`` from a memo."""

    _memo: dict[tuple[Any, ...], Any]

    def _memoised(self) -> dict[tuple[Any, ...], Any] | None:
        memo: dict[tuple[Any, ...], Any] | None = self.__dict__.get("_memo")
        if memo is None:
            groups = itertools.chain(
                self._application_limits,
                self._default_limits,
                *self._decorated_limits.values(),
                *self._blueprint_limits.values(),
            )
            if not all(isinstance(group.limit_provider, str) for group in groups):
                return None  # a dynamic limit: its value may change between requests
            memo = self.__dict__["_memo"] = {}
        return memo

    def resolve_limits(self, app: Any, *args: Any) -> Any:
        app = _unproxied(app)
        memo = self._memoised()
        if memo is None:
            return super().resolve_limits(app, *args)
        key = ("resolve", app, *args)
        answer = memo.get(key)
        if answer is None:
            answer = memo[key] = super().resolve_limits(app, *args)
        return answer

    def exemption_scope(self, app: Any, endpoint: str | None, blueprint: str | None) -> Any:
        app = _unproxied(app)
        memo = self._memoised()
        if memo is None:
            return super().exemption_scope(app, endpoint, blueprint)
        key = ("exempt", app, endpoint, blueprint)
        answer = memo.get(key)
        if answer is None:
            answer = memo[key] = super().exemption_scope(app, endpoint, blueprint)
        return answer


def _forgetting(name: str) -> Any:
    upstream = getattr(LimitManager, name)

    def change(self: MemoisedLimitManager, *args: Any, **kwargs: Any) -> Any:
        self.__dict__.pop("_memo", None)
        return upstream(self, *args, **kwargs)

    change.__name__ = name
    return change


for _name in _CHANGES:
    setattr(MemoisedLimitManager, _name, _forgetting(_name))


class HeadersOn429Limiter(flask_limiter.Limiter):  # type: ignore[misc]
    """Flask-Limiter, writing ``RateLimit-*`` and ``Retry-After`` on 429 responses only, with
    each route's limits resolved once (``MemoisedLimitManager``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_manager.__class__ = MemoisedLimitManager

    @property
    def _headers_enabled(self) -> Any:
        wanted = self._headers_wanted
        return wanted and has_request_context() and bool(g.get(RATE_LIMITED, False))

    @_headers_enabled.setter
    def _headers_enabled(self, value: bool | None) -> None:
        self._headers_wanted = value
