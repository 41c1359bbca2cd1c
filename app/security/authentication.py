"""Who calls an HTTP route: the one place that reads credentials from requests.

A view declares how it is called with one decorator, which answers 401 (or 503) in the
contract's shape before the view runs and hands the view its caller:

- ``@user_required``: a user's JWT (``Authorization: Bearer``), for the inbox; the view gets the
  user id;
- ``@api_key_required``: a webhook key (``X-API-Key``, else the body's ``apiKey``); the view gets
  the key's ``key_id``;
- ``@metrics_token_required``: ``METRICS_TOKEN`` as a Bearer credential, when one is set.

The rate limiter (``app.api.limits``) asks ``caller()`` before the view runs, the request log
asks ``logged_user()`` after it; the answer is worked out once per request. A Bearer route's
401 carries its ``WWW-Authenticate`` challenge (``bearer_challenge``). Credentials are
read from headers (and the webhook's body), never from the query string, so they do not end up
in access logs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from app.errors import ApiError, ServiceUnavailable, Unauthorized
from app.observability import metrics
from app.request_body import request_body
from app.request_locals import (
    current_flask_app,
    current_g,
    current_request,
    current_request_context,
    environ_key,
)
from app.security.api_keys import key_id, matching_key
from app.security.tokens import TokenProblem, TokenRefused, authenticate, strip_bearer

P = ParamSpec("P")
R = TypeVar("R")

API_KEY_HEADER = "X-API-Key"
_API_KEY = environ_key(API_KEY_HEADER)
API_KEY_FIELD = "apiKey"
#: The attribute a decorator sets on its view: the scheme its callers use.
SCHEME_ATTRIBUTE = "notify_scheme"


class Caller(NamedTuple):
    """An authenticated caller: a user (its id) or a webhook key (its ``key_id``)."""

    scheme: Scheme
    id: str

    def bucket(self) -> str:
        """The caller's rate-limit key."""
        prefix = "inbox-user:" if self.scheme is Scheme.USER else "webhook-key:"
        return prefix + self.id


class Scheme(StrEnum):
    """How the callers of a route prove who they are."""

    USER = "user"
    API_KEY = "api_key"
    METRICS = "metrics"


class _Outcome(NamedTuple):
    """What this request's credentials gave: a caller, or the error its view answers."""

    caller: Caller | None
    refusal: ApiError | None
    #: The token's problem (Bearer routes): it decides the ``WWW-Authenticate`` challenge.
    problem: TokenProblem | None = None
    #: The user the request's log line names (also for a revoked token).
    logged_user: str | None = None


def scheme() -> Scheme | None:
    """The scheme the view of this request declares; None for an unknown route or a method the
    route does not serve, and for a route open to all."""
    ctx = current_request_context()
    endpoint = ctx.request.endpoint
    view = ctx.app.view_functions.get(endpoint) if endpoint else None
    found: Scheme | None = getattr(view, SCHEME_ATTRIBUTE, None)
    return found


def caller() -> Caller | None:
    """The authenticated caller of this request, by its view's scheme, or None (no scheme, no
    valid credentials). Worked out once per request: the rate limiter asks before the view."""
    return _outcome().caller


def logged_user() -> str | None:
    """The user id for the request's log line: known only if a Bearer route read the token
    (never authenticates by itself)."""
    outcome: _Outcome | None = current_g().get("notify_auth")
    return outcome.logged_user if outcome is not None else None


def _outcome() -> _Outcome:
    flask_g = current_g()
    outcome: _Outcome | None = flask_g.get("notify_auth")
    if outcome is None:
        outcome = flask_g.notify_auth = _authenticate(scheme())
    return outcome


def _authenticate(kind: Scheme | None) -> _Outcome:
    if kind is Scheme.USER:
        return _bearer_user()
    if kind is Scheme.API_KEY:
        return _api_key()
    if kind is Scheme.METRICS:
        return _metrics_token()
    return _Outcome(None, None)


def _bearer_user() -> _Outcome:
    """Revocations that cannot be read (database down) leave no user, and the view answers 503."""
    try:
        user = authenticate(request.headers.get("Authorization"))
    except TokenRefused as refused:
        refusal = Unauthorized(
            message="A valid bearer token is required (Authorization header).",
            details={"token": refused.problem.value},
            challenge=bearer_challenge(refused.problem),
        )
        return _Outcome(None, refusal, refused.problem, refused.user)
    except ServiceUnavailable as error:
        return _Outcome(None, error)
    return _Outcome(Caller(Scheme.USER, user), None, logged_user=user)


def _api_key() -> _Outcome:
    """The header first, then the body's ``apiKey``: a body that cannot be read has none (its
    error is the view's answer: raised here, Flask-Limiter would log it)."""
    candidate: Any = current_request().environ.get(_API_KEY)
    if not candidate:
        try:
            body = request_body()
        except (ApiError, HTTPException):
            body = None
        if isinstance(body, dict):
            candidate = body.get(API_KEY_FIELD)
    key = matching_key(candidate, current_flask_app().config["WEBHOOK_API_KEY"])
    if key is None:
        return _Outcome(
            None, Unauthorized(message="A valid API key is required (X-API-Key header).")
        )
    return _Outcome(Caller(Scheme.API_KEY, key_id(key)), None)


def _metrics_token() -> _Outcome:
    """Compared in constant time; no token configured lets every caller in."""
    expected: str = current_app.config["METRICS_TOKEN"]
    presented = strip_bearer(request.headers.get("Authorization"), scheme_required=True)
    if expected and matching_key(presented, [expected]) is None:
        refusal = Unauthorized(
            message="A valid metrics token is required (Authorization: Bearer).",
            challenge=bearer_challenge(None),
        )
        return _Outcome(None, refusal)
    return _Outcome(Caller(Scheme.METRICS, "metrics"), None)


#: The ``notify_auth_refusals_total`` code of each scheme whose credentials are not a token's.
REFUSAL_CODES = {Scheme.API_KEY: "api_key_invalid", Scheme.METRICS: "metrics_token_invalid"}


def _require(kind: Scheme) -> Caller:
    outcome = _outcome()
    if outcome.caller is not None:
        return outcome.caller
    if outcome.refusal is None:
        raise RuntimeError(f"no credentials read for a {kind} route")
    if isinstance(outcome.refusal, Unauthorized):
        metrics.auth_refused(outcome.problem.value if outcome.problem else REFUSAL_CODES[kind])
    raise outcome.refusal


def user_required(view: Callable[Concatenate[str, P], R]) -> Callable[P, R]:
    """A route for users: 401 ``unauthorized`` naming the token's problem (``details.token``), or
    503 when revocations cannot be read; else the view runs with the user id first."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return view(_require(Scheme.USER).id, *args, **kwargs)

    setattr(wrapper, SCHEME_ATTRIBUTE, Scheme.USER)
    return wrapper


def api_key_required(view: Callable[Concatenate[str, P], R]) -> Callable[P, R]:
    """A route for servers: the body's own errors (415, 400, 413) first, since the key may be in
    it, then 401 ``unauthorized``; else the view runs with the key's ``key_id`` first."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        request_body()
        return view(_require(Scheme.API_KEY).id, *args, **kwargs)

    setattr(wrapper, SCHEME_ATTRIBUTE, Scheme.API_KEY)
    return wrapper


def metrics_token_required(view: Callable[P, R]) -> Callable[P, R]:
    """The metrics route: 401 ``unauthorized`` when ``METRICS_TOKEN`` is set and not presented."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _require(Scheme.METRICS)
        return view(*args, **kwargs)

    setattr(wrapper, SCHEME_ATTRIBUTE, Scheme.METRICS)
    return wrapper


def bearer_challenge(problem: TokenProblem | None) -> str:
    """The ``WWW-Authenticate`` header of a Bearer route's 401 (RFC 6750): the scheme to use,
    and whether the token sent was refused."""
    sent = problem not in (None, TokenProblem.MISSING)
    return 'Bearer error="invalid_token"' if sent else "Bearer"
