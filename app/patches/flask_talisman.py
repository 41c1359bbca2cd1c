"""flask-talisman overrides: each policy's header text made once, and the webhook's headers
answered from Talisman's own first answer.

- ``Talisman._parse_policy`` turns a policy dict into its header text on every response. Without
  a CSP nonce (this service uses none) the text depends on the policy alone:
  ``PolicyCachingTalisman`` makes it once per policy.
- ``Talisman._set_response_headers`` (registered by ``init_app`` as an after-request hook)
  reads the view's options and sets eight headers one by one on every response. What it sets
  depends on the view (its ``talisman_view_options``), on whether the request is secure
  (``is_secure`` or ``X-Forwarded-Proto: https``) and on the nonce; on the hot paths
  (``capture_talisman``) it is captured per (path, method, endpoint, security, status) by
  ``app.security.captured_headers`` and replayed.
- ``Talisman._force_https`` (a before-request hook) reads ``request.is_secure`` and
  ``X-Forwarded-Proto`` through werkzeug's proxy on every request, and uses them only when the
  view's ``force_https`` is on: ``PolicyCachingTalisman`` reads them only then.
- ``Talisman._get_local_options`` (three times a request: both before-request hooks and the
  headers) merges the view's options with the settings: ``PolicyCachingTalisman`` keeps its
  answer per view function until the next ``init_app``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from flask import Flask, Response, request
from flask_talisman import Talisman

from app.patches.fence import fence
from app.request_locals import current_request, current_request_context, environ_key
from app.security.captured_headers import CapturedHeaders

#: Where ``request.headers`` reads X-Forwarded-Proto from.
FORWARDED_PROTO = environ_key("X-Forwarded-Proto")

fence(
    "flask_talisman.talisman.Talisman._parse_policy",
    "20a5dcb0e22566bd45f107e4ddeaf97874a3ebfd12ccbd388ac48dea6ff565d3",
    "memoised per policy object when there is no nonce",
)
fence(
    "flask_talisman.talisman.Talisman._set_response_headers",
    "4a26dbdd0be5b3ff6fee58fab0a54263b8a33fe0f6ded2ae2a832bf743fda601",
    "captured: appends headers that depend on the view, the scheme and the nonce only",
)
fence(
    "flask_talisman.talisman.Talisman._get_local_options",
    "2ca48cc1f86c43d17bf7b7d73cce921f4a32c4815ed39dd177415675abc595b8",
    "memoised: the options come from the endpoint's view function and the settings only",
)
fence(
    "flask_talisman.talisman.Talisman._force_https",
    "262f9739319e0a070db647f93595ab4a150a2612c2930d0fbd8f1841ff70927d",
    "short-cut: upstream's own hook only when the view's force_https is on",
)
fence(
    "flask_talisman.talisman.Talisman._set_hsts_headers",
    "010eaa960f5af091b5700fc5197f47f571ae0882513aba2ffd3a8571ab4a8235",
    "relied on: HSTS depends on is_secure and X-Forwarded-Proto only",
)
fence(
    "flask_talisman.talisman.Talisman.init_app",
    "f84e5b9368c750c535ccf9a6542c5f19d62ad0a64ecf969a0be8803d965fd7a4",
    "relied on: registers self._set_response_headers with app.after_request",
)


class PolicyCachingTalisman(Talisman):  # type: ignore[misc]
    """Talisman, turning each policy into its header text once instead of on every response.

    Without a CSP nonce the text depends on the policy alone (this service uses no nonce).
    """

    def __init__(self) -> None:
        super().__init__()
        self._view_options: dict[object, dict[str, Any]] = {}
        self._policy_texts: dict[int, tuple[object, str]] = {}

    def init_app(self, app: Flask, **options: Any) -> None:
        self._view_options = {}
        super().init_app(app, **options)

    def _get_local_options(self) -> dict[str, Any]:
        """Upstream's options, worked out once per view function: they come from the view's
        ``talisman_view_options`` and this extension's settings, both fixed once ``init_app``
        ran (upstream ran eight ``setdefault`` and three proxy reads three times a request)."""
        ctx = current_request_context()
        endpoint = ctx.request.endpoint
        view = ctx.app.view_functions.get(endpoint) if endpoint else None
        options = self._view_options.get(view)
        if options is None:
            options = self._view_options[view] = super()._get_local_options()
        return options

    def _force_https(self) -> Any:
        """Upstream's hook when the view forces HTTPS; otherwise what upstream does then: the
        session cookie marked secure, no redirect (its criteria, read from the request, only
        matter for a view that forces HTTPS)."""
        if self._get_local_options()["force_https"]:
            return super()._force_https()
        if self.session_cookie_secure and not self.app.debug:
            self.app.config["SESSION_COOKIE_SECURE"] = True
        return None

    def _parse_policy(self, policy: object) -> str:
        if hasattr(request, "csp_nonce"):
            return str(super()._parse_policy(policy))
        cached = self._policy_texts.get(id(policy))
        if cached is None or cached[0] is not policy:
            cached = (policy, str(super()._parse_policy(policy)))
            self._policy_texts[id(policy)] = cached
        return cached[1]


def capture_talisman(app: Flask, talisman: Talisman, paths: Iterable[str]) -> None:
    """Answer Talisman's after-request hook from its capture on ``paths``."""
    hot = frozenset(paths)

    def shape(response: Response) -> Hashable | None:
        request = current_request()
        if request.path not in hot or hasattr(request, "csp_nonce"):
            return None
        return (
            request.path,
            request.method,
            request.endpoint,
            request.is_secure,
            request.environ.get(FORWARDED_PROTO),
            response.status_code,
        )

    hooks = app.after_request_funcs.setdefault(None, [])
    for index, hook in enumerate(hooks):
        if getattr(hook, "__func__", None) is Talisman._set_response_headers and (
            getattr(hook, "__self__", None) is talisman
        ):
            hooks[index] = CapturedHeaders(hook, shape)
            return
    raise RuntimeError("Talisman's after-request hook was not found; init_app it first")
