"""Flask-CORS override: the webhook's CORS headers answered from Flask-CORS's own first answer.

``init_app`` registers ``cors_after_request`` (made by ``make_after_request_function``), which
matches the path against every resource pattern and asks ``get_cors_headers`` for the headers
on every response. Those depend on the path, the method, the ``Origin``,
``Access-Control-Request-*`` headers and whether CORS headers are already on the response. On
the hot paths (``capture_cors``) a request without ``Origin``, or with one of the configured
origins, that is no preflight and asks nothing of private networks, is answered from the
capture (``app.security.captured_headers``); any other request (an unknown origin, whose
number is unbounded, a preflight) runs Flask-CORS as it is.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from flask import Flask, Response
from flask_cors.core import ACL_REQUEST_HEADER_PRIVATE_NETWORK, FLASK_CORS_EVALUATED

from app.patches.fence import fence
from app.request_locals import current_request, environ_key
from app.security.captured_headers import CapturedHeaders

fence(
    "flask_cors.extension.make_after_request_function",
    "3e1f12121eb348b593f53b76740fc6663cdef7fb935b6655899c02d82f1fa8c7",
    "captured: its hook's headers depend on the request's shape only",
)
fence(
    "flask_cors.core.set_cors_headers",
    "de266239ae2bb639305b243d3ee5fe3801b0bc4950920224cf443b9d7064b300",
    "relied on: only appends headers, skips an evaluated response",
)
fence(
    "flask_cors.core.get_cors_headers",
    "80f37277960ef3d753fa31df7c983c92caed82e7bb3c8e13757453a1921a565e",
    "relied on: depends on Origin, the method and the Access-Control-Request-* headers",
)


#: Where ``request.headers`` reads Origin and the private-network request header from.
ORIGIN = environ_key("Origin")
PRIVATE_NETWORK = environ_key(ACL_REQUEST_HEADER_PRIVATE_NETWORK)


def capture_cors(app: Flask, paths: Iterable[str], origins: Iterable[str]) -> None:
    """Answer Flask-CORS's after-request hook from its capture on ``paths``."""
    hot = frozenset(paths)
    known = frozenset(origins)

    def shape(response: Response) -> Hashable | None:
        request = current_request()
        environ = request.environ
        origin = environ.get(ORIGIN)
        if (
            request.path not in hot
            or request.method == "OPTIONS"
            or (origin is not None and origin not in known)
            or PRIVATE_NETWORK in environ
            or hasattr(response, FLASK_CORS_EVALUATED)
        ):
            return None
        return (request.path, request.method, origin, response.status_code)

    hooks = app.after_request_funcs.setdefault(None, [])
    for index, hook in enumerate(hooks):
        if (
            getattr(hook, "__name__", "") == "cors_after_request"
            and getattr(hook, "__module__", "") == "flask_cors.extension"
        ):
            hooks[index] = CapturedHeaders(hook, shape)
            return
    raise RuntimeError("Flask-CORS's after-request hook was not found; init_app it first")
