"""JSON Web Tokens: the only module that decodes them (HTTP, sockets and the CLI use it).

The secret, accepted algorithms and leeway are Flask-JWT-Extended's settings
(``JWT_SECRET_KEY``, ``JWT_DECODE_ALGORITHMS``, ``JWT_DECODE_LEEWAY``); tokens are issued with
Flask-JWT-Extended, but any HS256 token with a ``sub`` (the Node server's included) is accepted.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

import jwt as pyjwt
from flask import current_app, g
from flask_jwt_extended import create_access_token

from app.services.validation import user_id as as_user_id

MAX_TOKEN_LENGTH = 8192
BEARER = "bearer "


class TokenProblem(StrEnum):
    MISSING = "token_missing"
    INVALID = "token_invalid"
    EXPIRED = "token_expired"


class TokenRefused(Exception):
    def __init__(self, problem: TokenProblem) -> None:
        self.problem = problem
        super().__init__(problem.value)


def strip_bearer(raw: object) -> str | None:
    """The token in ``raw``, without an optional ``Bearer `` prefix; None if there is none."""
    if not isinstance(raw, str):
        return None
    token = raw.strip()
    if token.lower() == BEARER.strip():  # the prefix with nothing after it
        return None
    if token[: len(BEARER)].lower() == BEARER:
        token = token[len(BEARER) :].strip()
    return token or None


def authenticate(raw: object) -> str:
    """The user id (``sub`` as a string) of a valid token, or TokenRefused naming the problem.

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
    g.user_id = user  # the request's log line names its user
    return user


def issue(user: str, expires_in: int | None = None) -> str:
    """A token for ``user``, signed with the configured secret (needs an app context)."""
    seconds = current_app.config["JWT_EXPIRES_IN"] if expires_in is None else expires_in
    return str(create_access_token(identity=user, expires_delta=timedelta(seconds=seconds)))
