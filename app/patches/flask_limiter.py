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
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import flask_limiter
from flask import Flask, g
from flask_limiter import RateLimitExceeded, RequestLimit
from flask_limiter._extension import LimiterContext
from flask_limiter._manager import LimitManager
from flask_limiter.util import get_qualified_name

from app.patches.fence import fence
from app.request_locals import (
    current_flask_app,
    current_g,
    current_request,
    current_request_context,
)

fence(
    "flask_limiter._extension.Limiter._Limiter__inject_headers",
    "aa6d828bc55063a1525eff3d853151ab3133ec4a644327a6e29af9c008b222bd",
    "relied on: reads _headers_enabled before adding the headers",
)
fence(
    "flask_limiter._extension.Limiter.context",
    "71149b399f49388f5162e1ca2134ca6d554545328e1666ad5576b10581ccda4e",
    "replaced: the same per-limiter state on the request context, read without the proxy",
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

fence(
    "flask_limiter._extension.Limiter._check_request_limit",
    "cc6f2b2c1b5c1ff77bd1426cab649d6e2edb28760d95ba7ae596f7867c6440b9",
    "copied for the hot paths by DirectCheck (errors swallowed, no in-memory fallback)",
)
fence(
    "flask_limiter._extension.Limiter._Limiter__filter_limits",
    "c352bf78105d7bcf64a50dc9f6ef2c822032ca8bf34b2e674e0c52d3bf3ac42c",
    "copied by DirectCheck: the limits resolved for the endpoint, from the memo",
)
fence(
    "flask_limiter._extension.Limiter._Limiter__evaluate_limits",
    "afdca13320b17161fa9d2cb67e8b0f303ffb4305d4bb6a03694756316171a477",
    "copied by DirectCheck without meta limits: each limit hit, the header limit chosen",
)
fence(
    "flask_limiter._extension.Limiter._Limiter__check_all_limits_exempt",
    "d9908a3c23afbb346ab24121b57510bfdf35b15f3967bea07ea7ed01ec190466",
    "relied on: a request filter answering True skips Flask-Limiter's own check",
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


class MemoisedLimitManager(LimitManager):
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


#: Where ``Limiter.context`` keeps each limiter's state on the request context.
LIMITER_CONTEXTS = "_limiter_request_context"


class HeadersOn429Limiter(flask_limiter.Limiter):
    """Flask-Limiter, writing ``RateLimit-*`` and ``Retry-After`` on 429 responses only, with
    each route's limits resolved once (``MemoisedLimitManager``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_manager.__class__ = MemoisedLimitManager

    @property
    def context(self) -> LimiterContext:
        """``Limiter.context`` on the request context itself, not through werkzeug's proxy (two
        proxy reads and a ``hasattr`` through it, seven times per request)."""
        ctx = current_request_context()
        contexts = getattr(ctx, LIMITER_CONTEXTS, None)
        if contexts is None:
            contexts = defaultdict(LimiterContext)
            setattr(ctx, LIMITER_CONTEXTS, contexts)
        found: LimiterContext = contexts[self]
        return found

    @property
    def _headers_enabled(self) -> Any:
        wanted = self._headers_wanted
        if not wanted:
            return wanted
        try:
            current_request_context()
        except LookupError:
            return False
        return bool(current_g().get(RATE_LIMITED, False))

    @_headers_enabled.setter
    def _headers_enabled(self, value: bool | None) -> None:
        self._headers_wanted = value


#: ``g`` flag: DirectCheck decided this request's limits; Flask-Limiter's own check skips it.
CHECKED = "notify_limits_checked"


class DirectCheck:
    """The limits of the hot paths checked through ``limits`` with Flask-Limiter's own storage,
    keys, scopes and costs, before Flask-Limiter's check, which then skips the request.

    Flask-Limiter's ``_check_request_limit`` resolves the endpoint's limits, builds exemption
    scopes and meta-limit chains and looks its request context up seven times per request
    (py-spy: the largest cost of the webhook after pywsgi and Flask). This does what it does for
    a route whose limits are fixed: the same ``RuntimeLimit`` objects in the same order, each
    one's ``exempt_when``, key function and scope, one ``hit`` on the same storage, the same
    ``RequestLimit`` left in Flask-Limiter's request context for its 429 headers, and the same
    ``RateLimitExceeded`` on a breach. Whenever something it does not copy is in play (meta
    limits, the in-memory fallback, a conditional deduction, an ``on_breach`` callback, a
    request filter of someone else's) it leaves the request to Flask-Limiter.
    """

    def __init__(self, limiter: flask_limiter.Limiter, paths: Iterable[str]) -> None:
        self.limiter = limiter
        self.paths = frozenset(paths)
        self.resolved: dict[tuple[str, str], list[Any] | None] = {}
        self.log = logging.getLogger("flask-limiter")

    def install(self, app: Flask) -> None:
        """Before Flask-Limiter's own hook, which skips what this one decided: its request
        filter says so to every check Flask-Limiter makes, and the hook itself is wrapped
        (``skipping``) so a decided request does not walk its exemption and limit resolution
        only to find nothing to check."""
        hooks = app.before_request_funcs.setdefault(None, [])
        own = [
            h
            for h in hooks
            if getattr(h, "__func__", None) is type(self.limiter)._check_request_limit
        ]
        if len(own) != 1 or getattr(own[0], "__self__", None) is not self.limiter:
            raise RuntimeError("Flask-Limiter's before-request hook was not found")
        at = hooks.index(own[0])
        hooks[at] = self.skipping(own[0])
        hooks.insert(at, self)
        self.limiter.request_filter(lambda: bool(g.get(CHECKED, False)))

    def skipping(self, upstream: Callable[[], Any]) -> Callable[[], Any]:
        """Flask-Limiter's hook, ended at once for a request this check decided, as upstream
        ends it when a request filter exempts the request (no meta limits: ``_limits``
        guarantees it): no limit checked, none left for the headers."""
        limiter = self.limiter

        def check_request_limit() -> Any:
            if not current_g().get(CHECKED, False):
                return upstream()
            context = limiter.context
            context.view_rate_limit = None
            context.view_rate_limits = []

        return check_request_limit

    def _limits(self, endpoint: str) -> list[Any] | None:
        """The endpoint's limits in evaluation order, or None: leave it to Flask-Limiter."""
        request = current_request()
        key = (endpoint, request.method)
        if key in self.resolved:
            return self.resolved[key]
        limiter = self.limiter
        limits: list[Any] | None = None
        view = limiter_app().view_functions.get(endpoint)
        name = get_qualified_name(view) if view else ""
        manager = limiter.limit_manager
        plain = (
            isinstance(manager, MemoisedLimitManager)
            and manager._memoised() is not None
            and not limiter._meta_limits
            and len(limiter._request_filters) == 1  # ours
            and not limiter._in_memory_fallback_enabled
            and limiter._on_breach is None
        )
        if plain:
            marked = name in limiter._marked_for_limiting or manager.has_hints(endpoint)
            defaults, decorated = manager.resolve_limits(
                limiter_app(), endpoint, request.blueprint, name, True, marked
            )
            every = list(dict.fromkeys(defaults)) + list(decorated)
            if all(
                not lim.meta_limits and lim.deduct_when is None and lim.on_breach is None
                for lim in every
            ):
                limits = sorted(every, key=lambda x: x.limit)
        self.resolved[key] = limits
        return limits

    def __call__(self) -> None:
        request = current_request()
        if request.path not in self.paths:
            return
        limiter = self.limiter
        endpoint = request.endpoint
        if not endpoint or not (limiter.enabled and limiter.initialized) or limiter._storage_dead:
            return
        limits = self._limits(endpoint)
        if limits is None:
            return
        flask_g = current_g()
        try:
            self._evaluate(endpoint, limits, request.method)
        except RateLimitExceeded:
            flask_g.notify_limits_checked = True
            raise
        except Exception:
            if not limiter._swallow_errors:
                raise
            self.log.exception("Failed to rate limit. Swallowing error")
        flask_g.notify_limits_checked = True

    def _evaluate(self, endpoint: str, limits: list[Any], method: str) -> None:
        """``Limiter.__evaluate_limits`` for limits without meta limits or callbacks."""
        limiter = self.limiter
        failed: list[tuple[Any, list[str]]] = []
        for_header: RequestLimit | None = None
        view_limits: list[RequestLimit] = []
        for lim in limits:
            if lim.is_exempt or lim.method_exempt:
                continue
            scope = lim.scope_for(endpoint, method)
            key = lim.key_func()
            args = [key, scope]
            if not all(args):
                self.log.error(f"Skipping limit: {lim.limit}. Empty value found in parameters.")
                continue
            if limiter._key_prefix:
                args = [limiter._key_prefix, *args]
            request_limit = RequestLimit(limiter, lim.limit, args, False, lim.shared)
            view_limits.append(request_limit)
            if not limiter.limiter.hit(lim.limit, *args, cost=lim.deduction_amount):
                self.log.info("ratelimit %s (%s) exceeded at endpoint: %s", lim.limit, key, scope)
                failed.append((lim, args))
                request_limit.breached = True
                for_header = request_limit
                if limiter._fail_on_first_breach:
                    break
        if not for_header and view_limits:
            explicit = [limit for limit in view_limits if not limit.shared]
            for_header = explicit[0] if explicit else view_limits[0]
        context = limiter.context
        context.view_rate_limit = for_header or None
        context.view_rate_limits = view_limits
        if failed:
            raise RateLimitExceeded(sorted(failed, key=lambda x: x[0].limit)[0][0])


def limiter_app() -> Any:
    return current_flask_app()
