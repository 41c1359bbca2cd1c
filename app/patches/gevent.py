"""gevent (pywsgi) and gevent-websocket overrides: timeouts on stalled clients, JSON refusals,
a smaller read buffer.

gevent's pywsgi waits for ever for a request line, headers or a body that never come, so a
client that opens connections and sends nothing (slowloris) holds a greenlet and a file
descriptor per connection for ever. ``TimeoutHandler`` gives a plain HTTP connection
``CLIENT_TIMEOUT`` seconds (default 10) for each read and write, and as much to start its next
keep-alive request. A websocket, once upgraded, gets ``PING_INTERVAL + PING_TIMEOUT + 5``
seconds instead: a live client answers Engine.IO's pings well within it, and a client that
stopped reading frees its connection, and what was queued for it.

Requests refused before the application sees them (a malformed or too large request line or
header) are answered in the contract's JSON error shape: pywsgi's private
``WSGIHandler._handle_client_error`` answers them with an empty body, and tells them apart from
a plain socket error by its private ``_InvalidClientInput``.

The read buffer is 1 KiB instead of io's 8 KiB (larger reads, a big body, bypass it; a
Socket.IO frame or a request's headers are one or two reads of it). An upgraded websocket drops
its request's parsed headers (``email.message.Message``, ≈ 1.3 KB by tracemalloc): the environ
holds the same values, and nothing reads the handler's copy after the upgrade. gevent-websocket's
access line is formatted only when its logger writes INFO (it formatted, then dropped, a line
per request).

A request's headers are parsed by ``parse_headers``: pywsgi hands them to ``http.client``,
which runs the ``email`` package's feed parser over them (≈ 50-100 µs for a webhook's eight
headers, a tenth of the request). Header blocks of plain ``Name: value`` lines are split here
into the same message object; anything else (folded lines, a bare CR, no colon, an empty name,
no blank line at the end) is still parsed by ``http.client``.

The request's other per-request work is trimmed the same way, with what the client sees
unchanged: ``read_request`` and ``get_environ`` (copied) read the header values they need from
one index (``first_values``) instead of a ``Message.get`` scan each; a keep-alive connection
waits for its next request line on the socket's read event under a ``Timeout`` kept for the
connection (``IdleWaitIO``), instead of a ``recv`` that finds nothing and a new ``Timeout`` per
request; the answer's Date is formatted once a second (``date_header``).

An answer's headers and its first body chunk go out in one ``sendall`` (pywsgi sends them in
two: two system calls and two TCP segments for a 200-byte JSON answer), unless the answer is
chunked or its first chunk is large. And a plain socket's ``sendall`` tries one non-blocking
``send`` of the whole buffer first (``sendall_at_once``): gevent's asks the kernel for
``SO_SNDBUF`` and slices the buffer into 1 MiB chunks on every call, a system call and four
Python frames for the answer, query or command that almost always fits at once. The bytes on
the wire are the same either way.

An upgraded websocket outlives the greenlet that read its handshake (``detach``): that
greenlet is some 27 frames deep (gunicorn, pywsgi, gevent-websocket, the WSGI middlewares,
Engine.IO) and kept them, their saved C stack and their data-stack pages for the socket's whole
life (≈ 15 KB per idle socket, bench/PROFILE.md). Once Engine.IO has the websocket, its reader
goes on without it (``app.patches.engineio.FrameReader``: a greenlet only while frames come
in), and the connection's greenlet unwinds and ends without closing the connection
(``handle``, ``run_websocket`` and ``DetachingServer.do_close`` skip their cleanup); the reader
does that cleanup, in upstream's order, when it ends. What goes on the wire is unchanged;
gunicorn still counts (and at shutdown waits for) the connection in its pool.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.pool
from gevent._socketcommon import SocketMixin
from gevent.pywsgi import (
    Input,
    OldMessage,
    _InvalidClientInput,
    _InvalidClientRequest,
    format_date_time,
    unquote_latin1,
)
from gevent.timeout import Timeout
from geventwebsocket.handler import Client, WebSocketHandler
from gunicorn.workers.ggevent import PyWSGIServer  # type: ignore[import-untyped]

from app.patches.fence import fence, replace
from config.serving import serving_settings

fence(
    "gevent.pywsgi.WSGIHandler._handle_client_error",
    "a3fbde482b69b9fd10fe37b4c65a39e1e195d1f067ca351298104f6a092dd3dd",
    "replaced: JSON refusal bodies, a silent close on a timeout",
)
fence(
    "gevent.pywsgi._InvalidClientInput",
    "9ee87093a93977b45001ff609cc7bee39a73b04b900ac935b2cff26b30f21e3a",
    "relied on: tells a malformed request from a socket error",
)
fence(
    "gevent.pywsgi.WSGIHandler.read_requestline",
    "72173107a177f9b3a97c61a8b7ff8875fbc4f6664970d349d08b52af2716e985",
    "wrapped: each request starts the client timeout",
)
fence(
    "gevent.pywsgi.WSGIHandler.start_response",
    "4b6599df51bcbc09c1f550f0a0117093176e10dc40b582f2412b3ce2b326abbd",
    "wrapped: a request that asked to close gets Connection: close in its answer",
)
fence(
    "geventwebsocket.handler.WebSocketHandler.run_application",
    "3bd9b787d3271269c28bd16ac8bc539141307c28f95d37d308bdbf792b533026",
    "relied on: after upgrade_websocket, the request's headers are not read (dropped)",
)
fence(
    "gevent.pywsgi.WSGIHandler.handle_one_response",
    "16fcb501fa891f23991da06070d19d6ea1b9a048cb52f180951555185725ea9f",
    "relied on: after the application, the request's headers are not read (log_request)",
)
fence(
    "geventwebsocket.handler.WebSocketHandler.upgrade_websocket",
    "01f7ee962132a1febf42a0b8b0c44724dff54a9c2b47a388bb22d52a173d6788",
    "wrapped: an upgraded socket gets the ping window as its timeout",
)

fence(
    "gevent.pywsgi.WSGIHandler._write_with_headers",
    "5ccb48bf841cd3faeefb43a561756582c29f14d681743c7f95ac6570bf8ecbdc",
    "replaced: the headers and a small first chunk in one sendall (TimeoutHandler)",
)
fence(
    "gevent._socketcommon.SocketMixin.sendall",
    "bc9f669e06a55d3c7121c0f8e8ee5e295a4d9a91c1a64ef2dd84611075d5ce48",
    "wrapped: one non-blocking send first (sendall_at_once); the rest goes through it",
)
fence(
    "gevent.pywsgi.WSGIHandler.handle",
    "9e7238affc12535458d09a9d06a47fd1edd80899a68d17ef1849939d29edc22f",
    "replaced by TimeoutHandler.handle (copied): no cleanup once the websocket is detached",
)
fence(
    "geventwebsocket.handler.WebSocketHandler.run_websocket",
    "a3c4964039a9518b249897bd3bb5015a802717e0808f8bd2f691d2111b9962f1",
    "replaced by TimeoutHandler.run_websocket (copied): its cleanup after a detached reader",
)
fence(
    "gevent.pywsgi.Input._discard",
    "bea0da8a70780ba8435852db1cd0ca9db76703e505a048493206a459d07a3048",
    "relied on: nothing is read after the application when the body was read to its end",
)
fence(
    "geventwebsocket.handler.WebSocketHandler.log_request",
    "9ca977fdbda1525b283727ef47f17c2993b732dea92d719d08acc50b0187141a",
    "replaced: the same line, formatted only when its logger writes INFO",
)
fence(
    "gevent.baseserver._handle_and_close_when_done",
    "154d4884705bb589cbf363065cfd86bd8e4ee8321b6085778046f704ba793406",
    "relied on: the server closes the connection after its handler (DetachingServer.do_close)",
)
fence(
    "gevent.server.StreamServer.do_close",
    "728ac328c4119488e22b086fd13cf4a3708165c130a1510f460acb3d4e2fb24d",
    "replaced by DetachingServer.do_close: a detached connection is closed by its reader",
)

for _target, _sha, _why in (
    (
        "gevent.pywsgi.headers_factory",
        "98a39f0f3e7c3ced04c3f0850b7e7d76e26a9c682dc5b15875cf02950ff3da18",
        "replaced by parse_headers (TimeoutHandler.MessageClass): the same OldMessage",
    ),
    (
        "gevent.pywsgi.WSGIHandler.MessageClass",
        "638ffd7781c4802a7da63ebcd0acda3c3c866b901c76546aa17e18d43a47ac90",
        "replaced: parse_headers",
    ),
    (
        "http.client.parse_headers",
        "38aa1ecf42acd393114ace4a9cb75c4c37dcbdeee7314891dfc8a45de55b2fd2",
        "relied on: _read_headers, then the email parser over the lines",
    ),
    (
        "email.feedparser.FeedParser._parse_headers",
        "68a180f6d4f3ede00a9d1fa363128809a36a89bcd4bba347ed2ed358408fa454",
        "relied on: a plain header line is one set_raw of header_source_parse",
    ),
    (
        "email._policybase.Compat32.header_source_parse",
        "40e079281d97ab573aa49a93903c2d47e22e579061e41ddefff1d6dfc0147c41",
        "relied on: the value after the colon, left blanks and the line end stripped",
    ),
    (
        "gevent._socket3.socket.makefile",
        "ce638d822a3e912d8531bb2894a9162b892636447405c4ebe1106aa01826bd85",
        "copied for reading (TimeoutHandler.__init__): a SocketIO, _io_refs, a BufferedReader",
    ),
    (
        "socket.SocketIO.readinto",
        "331b4cfa70526d94a9b7a2a828fb8922f1ea0f447562729a87f9579bec55fa3b",
        "wrapped by IdleWaitIO.readinto: a timeout marks the object (_timeout_occurred)",
    ),
    (
        "gevent._socketcommon.SocketMixin.recv_into",
        "1c4104f0336e2e0868cedb2731e7a78c8ec30e88307b072fc5e45864321fd75c",
        "relied on: waits on _read_event (socket.timeout: a new Timeout) after a recv that blocks",
    ),
    (
        "gevent.pywsgi.WSGIHandler.finalize_headers",
        "ccf1b112eeacee4fc95aeca937762bc9b2a9950bc9118c52b52c76322c412b15",
        "replaced by TimeoutHandler.finalize_headers (copied): the Date value from date_header",
    ),
    (
        "gevent.pywsgi.format_date_time",
        "64c6a23abb2898f062075773ce83bf0f409e0c19a3b896b73b46e35d5f64b25c",
        "relied on: the value depends only on the second of the timestamp (time.gmtime)",
    ),
    (
        "gevent.timeout.Timeout.cancel",
        "af57589b648244fe121604eb7b162976b6f02adeedf55454193a0e07c9ab7694",
        "relied on: a Timeout not one-shot is stopped, not closed, and can start again",
    ),
    (
        "gevent.pywsgi.WSGIHandler.read_request",
        "b1702b63da71633fac836d1da264d45a0a8990e872256720ebd406c71eed9c20",
        "replaced by TimeoutHandler.read_request (copied): header reads from first_values",
    ),
    (
        "gevent.pywsgi.WSGIHandler.get_environ",
        "fbd39b74e42d7dbfa1aefcb24736fe819caaca6a5924d9a5822b3c97d6939fdc",
        "replaced by TimeoutHandler.get_environ (copied): one pass over the headers",
    ),
    (
        "gevent.pywsgi.WSGIHandler._headers",
        "5575828695b50513f61667fc5806241cebe99b1cd566d265feac7c76e0525cd6",
        "replaced by TimeoutHandler.get_environ: the same HTTP_ keys and values",
    ),
    (
        "gevent.pywsgi.WSGIHandler._connection_upgrade_requested",
        "2b997eb190d9a5f527f44b445f9fa65318360d3c1fe28fb155e28bf46ba634fe",
        "replaced by TimeoutHandler.get_environ: the same test on first_values",
    ),
    (
        "gevent.pywsgi.OldMessage",
        "7d36d3425c465ceeb9be325b22914ce4dc09c2106f57bb37a2cc24e94b752f60",
        "relied on: get, getheader, typeheader return a name's first value; headers formats",
    ),
    (
        "email.message.Message.get",
        "97a06cf1929b2ebdfc30b45579ffbea068a022facdb868e15332ff600d18bb30",
        "relied on: the first value of a name, any case (compat32: a str without surrogates)",
    ),
):
    fence(_target, _sha, _why)

#: Header lines the email parser reads as one ``name: value`` each (its ``headerRE``, a name of
#: one character or more, no CR or LF before the line's end), then the blank line.
PLAIN_HEADERS = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n)*\r?\n")


def parse_headers(fp: Any) -> Any:
    """pywsgi's ``headers_factory``: the same ``OldMessage`` from the same lines
    (``http.client``'s reading, its limits and errors), plain lines split without the email
    parser."""
    try:
        lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    except http.client.LineTooLong:
        message = OldMessage()
        message.status = "Line too long"
        return message
    block = b"".join(lines)
    if PLAIN_HEADERS.fullmatch(block):
        message = OldMessage()
        headers = message._headers
        for line in lines[:-1]:
            name, _, value = line.decode("iso-8859-1").partition(":")
            headers.append((name, value.lstrip(" \t").rstrip("\r\n")))
        message._payload = ""
        return message
    # the lines read again, by http.client itself
    return http.client.parse_headers(io.BytesIO(block), _class=OldMessage)


class IdleWaitIO(socket.SocketIO):
    """The raw reader of a connection's request stream: before a keep-alive connection's next
    request line (``idle``, set by ``TimeoutHandler.read_requestline``), it waits for the socket
    to be readable, then reads, where gevent's ``recv_into`` first tries a ``recv`` that finds
    nothing (the client sends its next request only after our answer: a system call and a
    ``BlockingIOError`` raised and caught per request), then waits under a new ``Timeout``
    (timer watcher made, started, closed). The wait here has the same limit (the socket's
    timeout), raises the same ``socket.timeout``, and its ``Timeout`` is kept for the
    connection's life and restarted. Bytes already buffered never wait: the buffered reader
    asks its raw reader only when its buffer is empty."""

    idle = False
    _timer: Timeout | None = None

    def readinto(self, b: Any) -> int | None:
        if self.idle:
            self.idle = False
            self._wait_readable()
        return super().readinto(b)

    def _wait_readable(self) -> None:
        sock = self._sock  # type: ignore[attr-defined]
        seconds = sock.timeout
        timed_out: bool = getattr(self, "_timeout_occurred", False)
        if seconds == 0.0 or self.closed or timed_out:
            return  # upstream's readinto answers these without waiting
        watcher = sock._read_event
        if watcher.callback is not None:
            return  # another greenlet waits on it: gevent's recv_into raises its error
        timer = self._timer
        if seconds is not None and (timer is None or timer.seconds != seconds):
            if timer is not None:
                timer.close()
            timer = self._timer = Timeout(seconds)
        if seconds is None or timer is None:
            sock.hub.wait(watcher)
            return
        timer.start()
        try:
            sock.hub.wait(watcher)
        except Timeout as expired:
            if expired is not timer:
                raise
            self._timeout_occurred = True
            raise TimeoutError("timed out") from None
        finally:
            timer.cancel()

    def close(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.close()
        super().close()


#: The last second an answer's Date was formatted for, and its value.
_date: tuple[int, bytes] = (-1, b"")


def date_header(timestamp: float) -> bytes:
    """pywsgi's ``format_date_time``, formatted once a second: its value depends only on the
    whole second (``time.gmtime``), and a busy worker answers hundreds of times in one."""
    global _date  # noqa: PLW0603 - one value per process, replaced whole (no lock needed)
    second = int(timestamp)
    memo = _date
    if memo[0] == second and timestamp >= 0:
        return memo[1]
    value: bytes = format_date_time(timestamp)
    if timestamp >= 0:
        _date = (second, value)
    return value


def first_values(message: Any) -> dict[str, Any]:
    """Each header name's first value, by its lower-cased name: what ``message.get(name)``
    returns (compat32 returns a value unchanged unless it has surrogates, which a latin-1
    decoded value never has), in one pass instead of a pass per ``get``."""
    fields: dict[str, Any] = {}
    for name, value in message._headers:
        fields.setdefault(name.lower(), value)
    return fields


SETTINGS = serving_settings()
CLIENT_TIMEOUT = SETTINGS.CLIENT_TIMEOUT
WEBSOCKET_TIMEOUT = SETTINGS.websocket_timeout
#: Bytes of each connection's read buffer.
READ_BUFFER = 1024


def _refusal(status: str, message: str) -> bytes:
    body = json.dumps({"success": False, "error": message, "code": "validation_error"}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


#: A first body chunk up to this size is sent with the headers (larger: its own send, as upstream).
ONE_SEND_LIMIT = 64 * 1024


_upstream_sendall = SocketMixin.sendall


def sendall_at_once(self: Any, data: Any, flags: int = 0) -> Any:
    """gevent's ``sendall`` for a plain socket, one non-blocking ``send`` of everything tried
    first: what the kernel did not take (a full buffer, a part) goes through gevent's, with its
    waiting and timeout. Errors other than "would block" are the same as gevent's first send's."""
    if type(data) is not bytes and type(data) is not bytearray:
        return _upstream_sendall(self, data, flags)
    try:
        sent = self._sock.send(data, flags)
    except BlockingIOError:
        return _upstream_sendall(self, data, flags)
    if sent == len(data):
        return None
    return _upstream_sendall(self, memoryview(data)[sent:], flags)


def install_sendall() -> None:
    """Plain gevent sockets only: ``gevent.ssl.SSLSocket`` has a ``sendall`` of its own."""
    import gevent._socket3

    replace(gevent._socket3.socket, "sendall", sendall_at_once)


BAD_REQUEST = _refusal("400 Bad Request", "The request line or headers are malformed or too large.")
URI_TOO_LONG = _refusal("414 URI Too Long", "The request line is too long.")


class TimeoutHandler(WebSocketHandler):  # type: ignore[misc]
    #: The websocket's reader runs in a greenlet of its own (``detach``).
    detached = False
    #: The request's ``first_values`` (``read_request``).
    header_fields: dict[str, Any] = {}  # noqa: RUF012 - never mutated: each request sets its own
    websocket: Any  # set by upgrade_websocket (an annotation only: run_application asks hasattr)

    #: A request line was read on this connection before (the next one is a keep-alive's).
    served = False

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        if rfile is None:
            # gevent's ``socket.makefile("rb", READ_BUFFER)``, with IdleWaitIO as its raw reader
            raw = IdleWaitIO(sock, "r")
            sock._io_refs += 1
            rfile = io.BufferedReader(raw, READ_BUFFER)
        super().__init__(sock, address, server, rfile)

    def MessageClass(self, fp: Any, *args: Any) -> Any:  # noqa: N802 - pywsgi's name
        return parse_headers(fp)

    def read_request(self, raw_requestline: str) -> bool:
        """``WSGIHandler.read_request`` (gevent 26.9.0, copied): the headers' values read from
        one index of them (``first_values``, kept for ``get_environ``) instead of a scan of
        every header, each name lower-cased, per ``get``."""
        self.requestline = raw_requestline.rstrip()
        words = self.requestline.split()
        if len(words) == 3:
            self.command, self.path, self.request_version = words
            if not self._check_http_version():
                raise _InvalidClientRequest(f"Invalid http version: {raw_requestline!r}")
        elif len(words) == 2:
            self.command, self.path = words
            if self.command != "GET":
                raise _InvalidClientRequest(
                    f"Expected GET method; Got command={self.command!r}; path={self.path!r}; "
                    f"raw={raw_requestline!r}"
                )
            self.request_version = "HTTP/0.9"
        else:
            raise _InvalidClientRequest(f"Invalid HTTP method: {raw_requestline!r}")

        self.headers = self.MessageClass(self.rfile, 0)

        if self.headers.status:
            raise _InvalidClientRequest(f"Invalid headers status: {self.headers.status!r}")

        fields = self.header_fields = first_values(self.headers)
        if fields.get("transfer-encoding", "").lower() == "chunked" and "content-length" in fields:
            del self.headers["content-length"]
            del fields["content-length"]

        content_length = fields.get("content-length")
        if content_length is not None:
            content_length = int(content_length)
            if content_length < 0:
                raise _InvalidClientRequest(f"Invalid Content-Length: {content_length!r}")

            if content_length and self.command in ("HEAD",):
                raise _InvalidClientRequest("Unexpected Content-Length")

        self.content_length = content_length

        if self.request_version == "HTTP/1.1":
            conntype = fields.get("connection", "").lower()
            self.close_connection = conntype == "close"
        elif self.request_version == "HTTP/1.0":
            conntype = fields.get("connection", "close").lower()
            self.close_connection = conntype != "keep-alive"
        else:
            self.close_connection = True

        return True

    def get_environ(self) -> Any:
        """``WSGIHandler.get_environ`` (gevent 26.9.0, copied): the ``HTTP_`` keys made in one
        pass over the parsed headers (upstream formats each as a line, then splits it again),
        the others read from ``read_request``'s ``first_values``."""
        env = self.server.get_environ()
        env["REQUEST_METHOD"] = self.command
        env["SCRIPT_NAME"] = ""

        path, query = self.path.split("?", 1) if "?" in self.path else (self.path, "")
        env["PATH_INFO"] = unquote_latin1(path)
        env["QUERY_STRING"] = query

        fields = self.header_fields
        content_type = fields.get("content-type")
        if content_type is not None:
            env["CONTENT_TYPE"] = content_type

        length = fields.get("content-length")
        if length:
            env["CONTENT_LENGTH"] = length
        env["SERVER_PROTOCOL"] = self.request_version

        client_address = self.client_address
        if isinstance(client_address, tuple):
            env["REMOTE_ADDR"] = str(client_address[0])
            env["REMOTE_PORT"] = str(client_address[1])

        for name, value in self.headers._headers:
            # upstream's _headers: names with "_" dropped; each value stripped
            if "_" in name:
                continue
            key = name.replace("-", "_").upper()
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                continue
            key = "HTTP_" + key
            value = value.strip()
            if key in env:
                if "COOKIE" in key:
                    env[key] += "; " + value
                else:
                    env[key] += "," + value
            else:
                env[key] = value

        sock = self.socket if env.get("HTTP_EXPECT") == "100-continue" else None

        chunked = env.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        handling_reads = not (
            fields.get("connection", "").lower() == "upgrade"
            or fields.get("upgrade", "").lower() == "websocket"
        )

        self.wsgi_input = Input(self.rfile, self.content_length, socket=sock, chunked_input=chunked)

        env["wsgi.input"] = self.wsgi_input if handling_reads else self.rfile
        env["wsgi.input_terminated"] = handling_reads
        return env

    def read_requestline(self) -> Any:
        """Each request (the first, or the next on a keep-alive connection) starts the clock."""
        self.socket.settimeout(CLIENT_TIMEOUT)
        raw = getattr(self.rfile, "raw", None)
        if type(raw) is not IdleWaitIO:
            return super().read_requestline()
        raw.idle = self.served
        self.served = True
        try:
            return super().read_requestline()
        finally:
            raw.idle = False

    def upgrade_websocket(self) -> Any:
        result = super().upgrade_websocket()
        if self.environ.get("wsgi.websocket") is not None:
            self.socket.settimeout(WEBSOCKET_TIMEOUT)
            self.__dict__.pop("headers", None)  # the class's empty default from now on
        return result

    def detach(self) -> Callable[[], None] | None:
        """Let this connection's greenlet end without closing the connection, once its
        websocket's reader goes on elsewhere: the call that closes it (the cleanup the greenlet
        skipped, in its order) when that reader ends. None (nothing done: the caller reads in
        this greenlet) when the pool is full, or when the request had a body: pywsgi reads
        what is left of it after the application.

        The pool holds an unstarted greenlet for the connection meanwhile, so gunicorn counts
        it against ``worker_connections`` and waits for it at a graceful stop."""
        body = getattr(self, "wsgi_input", None)
        if body is not None and (body.position < (body.content_length or 0) or body.chunked_input):
            return None
        token = gevent.Greenlet()
        pool = getattr(self.server, "pool", None)
        if pool is not None:
            try:
                pool.add(token, blocking=False)
            except gevent.pool.PoolFull:
                return None
        detached = getattr(self.server, "detached", None)
        if detached is not None:
            detached.add(self.socket)
        self.detached = True

        def finish() -> None:
            try:
                self.end_websocket()
            finally:
                self.time_finish = time.time()
                self.log_request()
                self.close_socket()
                if pool is not None and token in pool:  # not if gunicorn killed the pool
                    pool.discard(token)

        return finish

    def run_websocket(self) -> None:
        """``WebSocketHandler.run_websocket`` (gevent-websocket 0.10.1, copied); its cleanup
        (``end_websocket``) left to the reader once detached."""
        if getattr(self, "prevent_wsgi_call", False):
            return
        if not hasattr(self.server, "clients"):
            self.server.clients = {}
        try:
            self.server.clients[self.client_address] = Client(self.client_address, self.websocket)
            list(self.application(self.environ, lambda s, h, e=None: []))
        finally:
            if not self.detached:
                self.end_websocket()

    def end_websocket(self) -> None:
        del self.server.clients[self.client_address]
        if not self.websocket.closed:
            self.websocket.close()
        self.environ.update({"wsgi.websocket": None})
        self.websocket = None

    def handle(self) -> None:
        """``WSGIHandler.handle`` (gevent 26.9.0, copied): the keep-alive loop; the connection
        left open once its websocket is detached."""
        try:
            while self.socket is not None:
                self.time_start = time.time()
                self.time_finish = 0
                result = self.handle_one_request()
                if result is None or self.detached:
                    break
                if result is True:
                    continue
                self.status, response_body = result
                self.socket.sendall(response_body)
                if self.time_finish == 0:
                    self.time_finish = time.time()
                self.log_request()
                break
        finally:
            if not self.detached:
                self.close_socket()

    def close_socket(self) -> None:
        """The end of ``WSGIHandler.handle``."""
        if self.socket is not None:
            _sock = getattr(self.socket, "_sock", None)
            try:
                # read out request data to prevent error: [Errno 104] Connection reset by peer
                if _sock:
                    try:
                        _sock.recv(16384)
                    finally:
                        _sock.close()
                self.socket.close()
            except OSError:
                pass
        self.__dict__.pop("socket", None)
        self.__dict__.pop("rfile", None)
        self.__dict__.pop("wsgi_input", None)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        """Say ``Connection: close`` when the connection will close after this answer.

        pywsgi closes an HTTP/1.1 connection whose request said ``Connection: close`` but does
        not say so in the answer (RFC 9112 9.6: the server SHOULD). A client that pools
        connections (Python's requests/urllib3) then keeps it as reusable, sends its next
        request on it as the server closes it, and gets "Remote end closed connection without
        response": a long-polling GET lost that way broke a handshake now and then.
        """
        if self.close_connection and not any(name.lower() == "connection" for name, _ in headers):
            headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)

    def finalize_headers(self) -> None:
        """``WSGIHandler.finalize_headers`` (gevent 26.9.0, copied): the Date from
        ``date_header``."""
        if self.provided_date is None:
            self.response_headers.append((b"Date", date_header(time.time())))

        self.connection_upgraded = self.code == 101

        if self.code not in (304, 204) and self.provided_content_length is None:
            if hasattr(self.result, "__len__"):
                total_len = sum(len(chunk) for chunk in self.result)
                self.response_headers.append((b"Content-Length", str(total_len).encode("latin-1")))
            else:
                self.response_use_chunked = (
                    not self.connection_upgraded and self.request_version != "HTTP/1.0"
                )
                if self.response_use_chunked:
                    self.response_headers.append((b"Transfer-Encoding", b"chunked"))

    def _write_with_headers(self, data: bytes) -> None:
        """pywsgi's, but a small first chunk of a plain (not chunked) answer goes in the same
        ``sendall`` as the headers: one system call and one segment instead of two."""
        self.headers_sent = True
        self.finalize_headers()
        towrite = bytearray(b"HTTP/1.1 ")
        towrite += self.status
        towrite += b"\r\n"
        for header, value in self.response_headers:
            towrite += header
            towrite += b": "
            towrite += value
            towrite += b"\r\n"
        towrite += b"\r\n"
        if data and not self.response_use_chunked and len(data) <= ONE_SEND_LIMIT:
            towrite += data
            self._sendall(towrite)
            return
        self._sendall(towrite)
        self._write(data)

    def log_request(self) -> None:
        """gevent-websocket's access line, formatted only when its logger writes INFO (the
        service sets it to WARNING: upstream formatted the line for every request and dropped
        it)."""
        if "101" not in str(self.status):
            logger = self.logger
            if logger.isEnabledFor(logging.INFO):
                logger.info(self.format_request())

    def handle_one_request(self) -> Any:
        result = super().handle_one_request()
        if isinstance(result, tuple) and result[0] == "414":
            return ("414", URI_TOO_LONG)
        return result

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        if isinstance(ex, OSError) and not isinstance(ex, _InvalidClientInput):
            # Silence past CLIENT_TIMEOUT, or a reset, while reading the headers: just close.
            return ("408", b"")
        self.log_error("Invalid request (from %s): %s", self.client_address, type(ex).__name__)
        return ("400", BAD_REQUEST)


class DetachingServer(PyWSGIServer):  # type: ignore[misc]
    """gunicorn's pywsgi server; a connection whose websocket was detached is closed by its
    reader's greenlet (``TimeoutHandler.detach``), not when the handler returns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.detached: set[Any] = set()

    def do_close(self, sock: Any, *args: Any) -> None:
        if sock in self.detached:
            self.detached.discard(sock)
            return
        super().do_close(sock, *args)
