"""Flask overrides: per-request work this service never needs.

- ``Flask.ensure_sync`` checks every hook and view for ``async def`` on every call; there are
  none here (gevent does the waiting), so it returns the function as it is.
- ``Flask.create_url_adapter`` matches the request's URL for every request context, including
  the one Flask-SocketIO makes for each Socket.IO event from the handshake's environ: its
  ``/socket.io/`` path is no route, so each event built and stored a 404. Those get no adapter.
- Flask's default session interface looks for, and verifies, a session cookie on every request;
  this service has no cookie sessions (every caller authenticates with a key or a token).
- ``RequestContext.match_request`` walks werkzeug's routing state machine for every request.
  A match of a rule without variables depends on the domain part, path, method and websocket
  flag only: ``MatchMemoContext`` keeps those (not errors, redirects or rules with variables)
  until a rule is added.
- ``Flask.create_url_adapter`` binds the URL map to every request's environ (host, scheme,
  IDNA encoding of the server name, path): the adapter depends on ten environ values and the
  app's settings only, holds no per-request state, and is kept per those values
  (``NotifyFlask.url_adapters``), with the request's ``host`` Flask sets beside it.
- ``DefaultJSONProvider.dumps`` calls ``json.dumps`` with its settings as keyword arguments,
  which builds a ``JSONEncoder`` for every answer: ``EncoderCachingJSONProvider`` keeps one per
  set of settings (an encoder holds no state between calls) and answers the same text.
- ``DefaultJSONProvider.response`` encodes a batch's 1,000 notifications one by one (1.6-4 ms of
  CPU) though they differ in a few fields: ``EncoderCachingJSONProvider.shaped_response`` (the
  webhook's answer, through ``json_response``) encodes each list's items once per shape.
- ``Response.get_wsgi_headers`` copies the answer's headers through ``Headers.add``, one
  value at a time, each checked for a line end: ``NotifyResponse`` copies the checked list in
  one pass (``copy_headers``; anything ``add`` would convert or refuse goes through it).
- ``Request.max_content_length`` reads the app through ``current_app`` (two proxy reads, twice
  a request): ``NotifyRequest`` reads Flask's context variable directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

from flask import Flask, Request, Response
from flask.ctx import RequestContext
from flask.globals import _cv_app
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface
from werkzeug.datastructures import Headers
from werkzeug.http import remove_entity_headers
from werkzeug.routing import MapAdapter, Rule
from werkzeug.sansio.response import Response as SansIOResponse
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wsgi import get_current_url

from app.json_texts import json_value_texts, shaped_dumps
from app.patches.fence import fence

fence(
    "flask.app.Flask.ensure_sync",
    "93da8bd89e2a20b7d3e41798422ab8914e970a39c3c57f41ab160aefb2560b90",
    "replaced by the identity: no async views or hooks",
)
fence(
    "werkzeug.datastructures.headers.Headers.add",
    "28e8052183b368d6306adfe09b53758e0fe5e7457f71b337965e4daa50874c01",
    "relied on by CapturedHeaders: appends (name, checked str value) to _list",
)
fence(
    "werkzeug.wrappers.response.Response.get_wsgi_headers",
    "c602160e42792250138a46a27abe7240b7c40a15fe47ce5def22c0db7854b8e7",
    "replaced by NotifyResponse.get_wsgi_headers (copied): the headers copied by copy_headers",
)
fence(
    "werkzeug.datastructures.headers.Headers.__init__",
    "b21f4252303cea3d3de6ad5c71e26ff5be272ac98af826cb6f1479163117d749",
    "relied on: Headers(other) adds each (name, value) of other's _list (Headers.add)",
)
fence(
    "werkzeug.datastructures.headers._str_header_value",
    "9879e136475e01929f4e1e1a0df4ca3cd9817a1426bc5464bf5c83b2a2450575",
    "relied on: a str value without CR or LF is kept as it is",
)
fence(
    "flask.app.Flask.create_url_adapter",
    "066133a70e406d124355efcc79198073d03cf368d5c260019880052884605b60",
    "wrapped: no adapter for Socket.IO event contexts",
)

fence(
    "flask.ctx.RequestContext.match_request",
    "919ccbf8eafa1cce9c10473ad1d46e7884a55a5c1ed3e3dd347b708a1927c661",
    "memoised for rules without variables (MatchMemoContext)",
)
fence(
    "werkzeug.routing.map.MapAdapter.match",
    "d60987ae51086935610beee328387d221cb5d2a5e8aecddd3f288cb2bcb3acd5",
    "relied on: a plain match depends on domain part, path, method and websocket only",
)
fence(
    "flask.app.Flask.request_context",
    "749e859aaeb91b1bf30fa05d0139112eeee7be749f612a7d6b5c507da2b6fbfb",
    "replaced: the same context, as MatchMemoContext",
)
fence(
    "flask.wrappers.Request.max_content_length",
    "9a5760c214e021c800d06dbc93a3d71e92035aed017554d9b6bdf341b0ee5cc4",
    "replaced: the same value, the app read without the proxy",
)

fence(
    "werkzeug.routing.map.Map.bind_to_environ",
    "9f9d25ed90c51c9688164a0a94cbae1cd44b60769398120de7e5a61d1cfc0f75",
    "relied on: reads only ADAPTER_ENVIRON of the environ",
)
fence(
    "werkzeug.routing.map.Map.bind",
    "fa3b9d530d2c0919f14c658047c19e4fafeb7819bb5f29dbb80b53ad5c493809",
    "relied on: a MapAdapter of immutable values",
)
fence(
    "flask.json.provider.DefaultJSONProvider.dumps",
    "6554d38c4dd97261e86fcf5b6334f5a76ce97dcd055453327f8a30591773a8f6",
    "replaced for the keywords response() passes: the same json.dumps, its encoder kept",
)
fence(
    "flask.json.provider.DefaultJSONProvider.response",
    "9254e25fd3cf40131001612e0e60d1b554ab7725a8acd5c15827115f624fbd18",
    "copied by shaped_response: dumps(obj, separators=(',', ':')) + newline out of debug mode",
)

#: Where Engine.IO answers (Flask-SocketIO's default ``path``); no Flask route lives under it.
SOCKETIO_PATH = "/socket.io/"


class NoSessions(SessionInterface):
    """No cookie sessions: every caller authenticates with a key or a token. Flask's default
    interface would still look for, and verify, a session cookie on every request."""

    def open_session(self, app: Flask, request: object) -> None:
        return None

    def save_session(self, app: Flask, session: object, response: Response) -> None:
        return None


#: What ``Map.bind_to_environ`` and ``get_host`` read from the environ.
ADAPTER_ENVIRON = (
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
    "HTTP_CONNECTION",
    "HTTP_UPGRADE",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_METHOD",
)
#: URL adapters kept per app (clients choose the host, path and query: past this, each
#: request binds its own, as upstream).
MAX_ADAPTERS = 256

#: Plain matches kept per app: far more than the routes times their methods.
MAX_MATCHES = 512


class MatchMemoContext(RequestContext):
    """A request context whose URL match comes from the app's memo when the same domain part,
    path, method and websocket flag matched a rule without variables before (no redirect, no
    error: those are matched every time, as is everything while the memo is full)."""

    def match_request(self) -> None:
        adapter = self.url_adapter
        app = self.app
        if adapter is None or not isinstance(app, NotifyFlask):
            return super().match_request()
        url_map = adapter.map
        if url_map.host_matching or adapter.subdomain is None:
            domain = adapter.server_name
        else:
            domain = adapter.subdomain
        key = (domain, adapter.path_info, adapter.default_method.upper(), adapter.websocket)
        memo = app.plain_matches
        if memo.rules != len(url_map._rules):
            memo.clear()
            memo.rules = len(url_map._rules)
        rule = memo.get(key)
        if rule is not None:
            self.request.url_rule, self.request.view_args = rule, {}
            return None
        super().match_request()
        found = self.request.url_rule
        if found is not None and not self.request.view_args and len(memo) < MAX_MATCHES:
            memo[key] = found
        return None


class PlainMatches(dict[tuple[Any, ...], Rule]):
    """The memo of ``MatchMemoContext``, with the rule count it was made for."""

    rules = -1


class NotifyRequest(Request):
    """Flask's request, reading ``MAX_CONTENT_LENGTH`` from the app without the proxy."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length
        ctx = _cv_app.get(None)
        if ctx is None:
            return WerkzeugRequest.max_content_length
        return ctx.app.config["MAX_CONTENT_LENGTH"]  # type: ignore[no-any-return]

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


#: Either line end in a header value (werkzeug's ``_newline_re``).
NEWLINE = re.compile(r"[\r\n]")


def copy_headers(headers: Headers) -> Headers:
    """``Headers(headers)``: a new ``Headers`` holding the same (name, value) pairs. Values
    that are ``str`` without a line end, as ``Headers.add`` and ``set`` keep them, are copied
    in one pass (upstream adds them one by one, each through ``_str_header_value``); anything
    else goes through ``Headers`` itself, with its conversions and errors."""
    if type(headers) is not Headers:
        return Headers(headers)
    pairs = headers._list
    values = [value for _, value in pairs]
    copy = Headers()
    if all(isinstance(value, str) for value in values) and NEWLINE.search("".join(values)) is None:
        copy._list = [(name, value) for name, value in pairs]
        return copy
    return Headers(headers)


class NotifyResponse(Response):
    """Flask's response, its headers copied for the WSGI server by ``copy_headers``."""

    def get_wsgi_headers(self, environ: Any) -> Headers:
        """werkzeug's ``Response.get_wsgi_headers`` (3.1, copied), with ``copy_headers``."""
        headers = copy_headers(self.headers)
        location: str | None = None
        content_location: str | None = None
        content_length: str | int | None = None
        status = self.status_code

        for key, value in headers:
            ikey = key.lower()
            if ikey == "location":
                location = value
            elif ikey == "content-location":
                content_location = value
            elif ikey == "content-length":
                content_length = value

        if location is not None:
            location = iri_to_uri(location)

            if self.autocorrect_location_header:
                current_url = get_current_url(environ, strip_querystring=True)
                current_url = iri_to_uri(current_url)
                location = urljoin(current_url, location)

            headers["Location"] = location

        if content_location is not None:
            headers["Content-Location"] = iri_to_uri(content_location)

        if 100 <= status < 200 or status == 204:
            headers.remove("Content-Length")
        elif status == 304:
            remove_entity_headers(headers)

        if (
            self.automatically_set_content_length
            and self.is_sequence
            and content_length is None
            and status not in (204, 304)
            and not (100 <= status < 200)
        ):
            content_length = sum(len(x) for x in self.iter_encoded())
            headers["Content-Length"] = str(content_length)

        return headers


#: The separators of ``DefaultJSONProvider.response`` out of debug mode.
COMPACT = (",", ":")


class EncoderCachingJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, keeping the ``JSONEncoder`` that ``json.dumps`` would build for
    each call made with no keyword or only ``separators`` (what ``response`` passes)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self._encoders: dict[tuple[Any, ...], json.JSONEncoder] = {}

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.keys() - {"separators"}:
            return super().dumps(obj, **kwargs)
        return self._encoder(kwargs.get("separators")).encode(obj)

    def _encoder(self, separators: tuple[str, str] | None) -> json.JSONEncoder:
        key = (self.default, self.ensure_ascii, self.sort_keys, separators)
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = self._encoders[key] = json.JSONEncoder(
                default=key[0], ensure_ascii=key[1], sort_keys=key[2], separators=key[3]
            )
        return encoder

    def shaped_response(self, obj: Any) -> SansIOResponse:
        """``response(obj)``, the same bytes, with each list among ``obj``'s values (a batch's
        notifications) encoded once per shape of its items (``json_texts.shaped_texts``):
        1,000 notifications cost one encode and their ids and recipients written in."""
        if (self.compact is None and self._app.debug) or self.compact is False:
            return self.response(obj)  # indented: a list's items are not written side by side
        if type(obj) is not dict or list not in set(map(type, obj.values())):
            return self.response(obj)  # nothing to share (one notification): 2 us less
        encode = self._encoder(COMPACT).encode
        text = shaped_dumps(encode, self.dumps, json_value_texts(self.ensure_ascii), obj)
        return self._app.response_class(f"{text}\n", mimetype=self.mimetype)


def json_response(obj: Any) -> SansIOResponse:
    """``current_app.json.response(obj)``: through ``shaped_response`` when the provider is
    this module's (a view returns it as it would return ``obj``)."""
    provider = _cv_app.get().app.json  # current_app's, without the proxy
    if isinstance(provider, EncoderCachingJSONProvider):
        return provider.shaped_response(obj)
    return provider.response(obj)


class NotifyFlask(Flask):
    """Flask without per-request work this service never needs: cookie sessions, the check of
    every hook and view for ``async def`` (there are none; gevent does the waiting), and URL
    matching for the request context of each Socket.IO event."""

    session_interface = NoSessions()
    request_class = NotifyRequest
    response_class = NotifyResponse
    json_provider_class = EncoderCachingJSONProvider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plain_matches = PlainMatches()
        self.url_adapters: dict[tuple[Any, ...], tuple[MapAdapter, str]] = {}

    def request_context(self, environ: dict[str, Any]) -> RequestContext:
        return MatchMemoContext(self, environ)

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """No URL matching for the request context Flask-SocketIO makes for each Socket.IO
        event (it carries the handshake's ``/socket.io/`` path, which is no route: matching it
        built and stored a 404 on every event); a request's adapter kept per the environ
        values and settings it is made from."""
        if request is None:
            return super().create_url_adapter(request)
        if request.path.startswith(SOCKETIO_PATH):
            return None
        config = self.config
        trusted = config["TRUSTED_HOSTS"]
        environ = request.environ
        key = (
            config["SERVER_NAME"],
            None if trusted is None else tuple(trusted),
            self.subdomain_matching,
            self.url_map.host_matching,
            self.url_map.default_subdomain,
            *[environ.get(name) for name in ADAPTER_ENVIRON],
        )
        kept = self.url_adapters.get(key)
        if kept is None:
            adapter = super().create_url_adapter(request)
            if adapter is not None and len(self.url_adapters) < MAX_ADAPTERS:
                self.url_adapters[key] = (adapter, request.host)
            return adapter
        # What upstream sets on the request beside making the adapter.
        if trusted is not None:
            request.trusted_hosts = trusted
        request.host = kept[1]
        return kept[0]
