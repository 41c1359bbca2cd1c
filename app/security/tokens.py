"""JSON Web Tokens: the only module that decodes them (HTTP, sockets and the CLI use it).

The secret, accepted algorithms and leeway are Flask-JWT-Extended's settings
(``JWT_SECRET_KEY``, ``JWT_DECODE_ALGORITHMS``, ``JWT_DECODE_LEEWAY``); tokens are issued with
Flask-JWT-Extended, but any HS256 token with a ``sub`` (the Node server's included) is accepted.
Tokens are verified here rather than by Flask-JWT-Extended: the README's "Authentication" says
why. HTTP routes reach this through ``security.authentication``'s decorators.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import NamedTuple

import jwt as pyjwt
from flask import current_app
from flask_jwt_extended import create_access_token

from app.services import revocations
from app.services.validation import user_id as as_user_id

MAX_TOKEN_LENGTH = 8192
BEARER = "bearer "


class TokenProblem(StrEnum):
    MISSING = "token_missing"
    INVALID = "token_invalid"
    EXPIRED = "token_expired"
    REVOKED = "token_revoked"


class TokenRefused(Exception):
    """A token that lets nobody in; ``user`` is its subject when only a revocation refused it
    (a validly signed token: the request's log line names that user)."""

    def __init__(self, problem: TokenProblem, user: str | None = None) -> None:
        self.problem = problem
        self.user = user
        super().__init__(problem.value)


def strip_bearer(raw: object, *, scheme_required: bool = False) -> str | None:
    """The one parser of Bearer credentials (RFC 6750, the scheme's name in any case): the token
    in ``raw`` without its ``Bearer `` prefix; None if there is none. The prefix is optional
    (a handshake's ``auth.token``, an inbox call) unless ``scheme_required`` (the metrics token)."""
    if not isinstance(raw, str):
        return None
    token = raw.strip()
    if token.lower() == BEARER.strip():  # the prefix with nothing after it
        return None
    if token[: len(BEARER)].lower() == BEARER:
        token = token[len(BEARER) :].strip()
    elif scheme_required:
        return None
    return token or None


class Claims(NamedTuple):
    """What the service reads from a valid token."""

    user: str
    #: ``iat`` in seconds since the epoch; 0 for a token without one (the contract's rule).
    issued_at: float
    #: ``exp`` in seconds since the epoch; None for a token that never expires.
    expires_at: float | None


def authenticate(raw: object) -> str:
    """The user id of a valid, unrevoked token (``verify``), or TokenRefused."""
    return verify(raw).user


def verify(raw: object) -> Claims:
    """The claims of a valid token that is not revoked, or TokenRefused naming the problem.

    ``decode``, then the revocation check, which reads this process's cache of revocations
    (``services.revocations``): no database round trip in the common case.
    """
    claims = decode(raw)
    if revocations.is_revoked(claims.user, claims.issued_at):
        raise TokenRefused(TokenProblem.REVOKED, claims.user)
    return claims


def decode(raw: object) -> Claims:
    """The claims (``sub`` as a string) of a valid token, or TokenRefused naming the problem.

    Refused as missing: no token, a blank one or a bare ``Bearer``. Refused as invalid: anything
    but a string (a token that cannot be valid is not a missing one); over 8 KiB; a signature,
    algorithm or format that does not verify (``alg: none`` and public-key algorithms are outside
    the configured list); ``sub`` missing or not a valid user id. Refused as expired: ``exp``
    passed (``nbf`` not reached is invalid), allowing the configured leeway.
    """
    if raw is not None and not isinstance(raw, str):
        raise TokenRefused(TokenProblem.INVALID)
    token = strip_bearer(raw)
    if token is None:
        raise TokenRefused(TokenProblem.MISSING)
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused(TokenProblem.INVALID)
    config = current_app.config
    try:
        claims = pyjwt.decode(
            token,
            config["JWT_SECRET_KEY"],
            algorithms=config["JWT_DECODE_ALGORITHMS"],
            leeway=config["JWT_DECODE_LEEWAY"],
            options={"require": ["sub"], "verify_sub": False},
        )
    except pyjwt.ExpiredSignatureError as error:
        raise TokenRefused(TokenProblem.EXPIRED) from error
    except pyjwt.PyJWTError as error:
        raise TokenRefused(TokenProblem.INVALID) from error
    user = as_user_id(claims.get("sub"))
    if user is None:
        raise TokenRefused(TokenProblem.INVALID)
    issued_at = _seconds(claims.get("iat"))
    return Claims(user, issued_at or 0.0, _seconds(claims.get("exp")))


def _seconds(value: object) -> float | None:
    """A NumericDate claim PyJWT has already checked (it takes what ``int()`` takes)."""
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise TokenRefused(TokenProblem.INVALID) from None


def issue(user: str, expires_in: int | None = None) -> str:
    """A token for ``user``, signed with the configured secret (needs an app context)."""
    seconds = current_app.config["JWT_EXPIRES_IN"] if expires_in is None else expires_in
    return str(create_access_token(identity=user, expires_delta=timedelta(seconds=seconds)))
