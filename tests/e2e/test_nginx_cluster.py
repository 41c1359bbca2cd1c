"""The nginx example (``deploy/nginx/notify.conf``) in front of two gunicorn processes, with real
``python-socketio`` clients over polling (upgrading to websocket) and over websocket.

How the test config is made: the example is rendered, not rewritten. Its upstream ``server``
lines get the test's gunicorn ports, its ``listen`` a free loopback port, and it is included in a
standalone ``nginx.conf`` whose pid file, logs and temporary directories all live in the test's
``tmp_path`` (``daemon off``, run as the current user with ``-p tmp_path``). Every proxy
directive (upgrade headers, X-Forwarded-*, buffering, timeouts) is the example's own.

Landing clients on different processes: with the example's ``ip_hash`` every loopback client
hashes to ONE backend (ip_hash keys on the first three octets of the address), which the first
test checks as it is. The second test swaps only the balancing line for the open-source
alternative the example documents, ``hash $notify_route consistent;`` where ``$notify_route``
is the client's ``notify_route`` cookie (its address when it has none). That keeps stickiness
(each client's polling requests and its websocket upgrade carry its cookie, so they all reach
one process; a polling request that reached another would get 400 "Invalid session") while the
test chooses, per client, a cookie value that lands on the process it wants. Where each client
landed is checked two ways: the nginx access log (every ``/socket.io/`` request of a cookie went
to one upstream) and each gunicorn's own ``GET /metrics`` (``notify_connected_sockets``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import API_KEY, JWT_SECRET, wait_until
from tests.e2e import servers
from tests.e2e.clients import Listener, webhook_at
from tests.e2e.servers import StartServer
from tests.e2e.test_js_client import needs_node, node_modules, run_suite  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

EXAMPLE = servers.ROOT / "deploy" / "nginx" / "notify.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
ROUTE_COOKIE = "notify_route"
#: The balancing line of the second test: by the client's cookie, by its address without one.
COOKIE_HASH = "hash $notify_route consistent;"
COOKIE_MAP = f"""
    map $cookie_{ROUTE_COOKIE} $notify_route {{
        ''      $remote_addr;
        default $cookie_{ROUTE_COOKIE};
    }}"""
#: One access-log line per request: which upstream served it, for which cookie.
LOG_FORMAT = f'\'$upstream_addr $status "$cookie_{ROUTE_COOKIE}" "$request"\''
ACCESS_LINE = re.compile(
    r'^(?P<upstream>\S+) (?P<status>\d+) "(?P<route>[^"]*)" "(?P<request>[^"]*)"'
)
NGINX_PROBLEM = re.compile(r"\[(emerg|alert|crit)\]")
START_DEADLINE = 15.0
STOP_DEADLINE = 10.0


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- rendering the example ------------------------------------------------------------------


def render_site(example: str, backends: list[int], port: int, balance: str | None = None) -> str:
    """The example with the test's backends and listen port (and, if given, another balancing
    line instead of ``ip_hash;``). Fails loudly if the example no longer has the lines the
    rendering relies on, so the test cannot silently drift from the example."""
    server_line = re.compile(
        r"^(?P<indent>[ \t]*)server 127\.0\.0\.1:\d+(?P<rest>[^;\n]*);\n", re.M
    )
    found = server_line.findall(example)
    assert len(found) >= 2, "the example's upstream should list two or more servers"
    indent, rest = found[0]
    lines = "".join(f"{indent}server 127.0.0.1:{backend}{rest};\n" for backend in backends)
    site = server_line.sub(lambda _: "", example)
    site = re.sub(r"(upstream notify_backend \{\n)", lambda m: m.group(1) + lines, site, count=1)
    assert lines in site, "the example should define `upstream notify_backend {`"
    site, listens = re.subn(
        r"^([ \t]*)listen \d+;", rf"\1listen 127.0.0.1:{port};", site, flags=re.M
    )
    assert listens == 1, "the example should have one `listen <port>;` line"
    # Which backend answered, for the test's eyes only (never in the example: it leaks topology).
    site = site.replace(
        f"listen 127.0.0.1:{port};",
        f"listen 127.0.0.1:{port};\n    add_header X-Upstream $upstream_addr always;",
    )
    if balance is not None:
        site, swapped = re.subn(r"^([ \t]*)ip_hash;", rf"\1{balance}", site, flags=re.M)
        assert swapped == 1, "the example should balance with one `ip_hash;` line"
    return site


def temp_path_directives(prefix: Path) -> str:
    """Every temporary directory nginx was built with, in ``prefix`` (the package's defaults
    are under /var/lib/nginx, which may not exist or not be ours)."""
    built = subprocess.run([str(NGINX), "-V"], capture_output=True, text=True, check=True).stderr
    kinds = ["client_body", "proxy"] + [
        kind
        for kind in ("fastcgi", "uwsgi", "scgi")
        if f"--without-http_{kind}_module" not in built
    ]
    return "\n".join(f"    {kind}_temp_path {prefix / 'temp' / kind};" for kind in kinds)


def standalone_conf(prefix: Path, site: Path, http_extra: str = "") -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers would drop to nobody otherwise
    return f"""daemon off;
{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} notice;
worker_shutdown_timeout 2s;
events {{
    worker_connections 512;
}}
http {{
    log_format routed {LOG_FORMAT};
    access_log {prefix / "access.log"} routed;
{temp_path_directives(prefix)}
{http_extra}
    include {site};
}}
"""


# --- the nginx process ----------------------------------------------------------------------


@dataclass
class Nginx:
    prefix: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self, name: str) -> str:
        path = self.prefix / name
        return path.read_text(errors="replace") if path.exists() else ""

    def describe(self) -> str:
        return (
            f"nginx on {self.url} (pid {self.proc.pid}), prefix {self.prefix}\n"
            f"--- nginx.conf\n{self.text('nginx.conf')}--- site.conf\n{self.text('site.conf')}"
            f"--- stderr\n{self.text('stderr.log')}--- error.log\n{self.text('error.log')}"
        )

    def access(self) -> list[dict[str, str]]:
        return [
            m.groupdict() for m in map(ACCESS_LINE.match, self.text("access.log").splitlines()) if m
        ]

    def stop(self) -> None:
        """QUIT (graceful: finish what is in flight), then TERM, then KILL, each with a wait."""
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_DEADLINE)


def start_nginx(prefix: Path, port: int, site: str, http_extra: str = "") -> Nginx:
    """nginx with ``site`` on ``port``, every file of it in ``prefix``; returns once
    ``GET /health`` through it is 200."""
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "site.conf").write_text(site)
    conf = prefix / "nginx.conf"
    conf.write_text(standalone_conf(prefix, prefix / "site.conf", http_extra))
    with (prefix / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [str(NGINX), "-p", str(prefix), "-c", str(conf)],
            stdout=stderr,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    nginx = Nginx(prefix, port, proc)
    answer = servers.health_within(f"{nginx.url}/health", proc, START_DEADLINE)
    if isinstance(answer, str):
        nginx.stop()
        raise AssertionError(f"nginx {answer}: {nginx.describe()}")
    return nginx


@dataclass
class Balanced:
    """Two gunicorn processes sharing Redis and an nginx in front of them."""

    nginx: Nginx
    backends: list[servers.Server]

    @property
    def url(self) -> str:
        return self.nginx.url

    def sockets(self) -> dict[int, int]:
        """``notify_connected_sockets`` of each process, from its own ``GET /metrics``."""
        counts = {}
        for server in self.backends:
            text = servers.get(server, "/metrics").text
            found = re.search(r"^notify_connected_sockets (\S+)$", text, re.M)
            assert found, text[:500]
            counts[server.port] = int(float(found.group(1)))
        return counts

    def route_to(self, server: servers.Server) -> str:
        """A cookie value that the test config's consistent hash sends to ``server``."""
        for attempt in range(200):
            route = f"route-{attempt}"
            response = requests.get(
                f"{self.url}/health",
                cookies={ROUTE_COOKIE: route},
                headers={"Connection": "close"},
                timeout=5,
            )
            if response.headers.get("X-Upstream") == f"127.0.0.1:{server.port}":
                return route
        raise AssertionError(f"no route to {server.url} in 200 cookie values")

    def socket_requests(self) -> list[dict[str, str]]:
        return [line for line in self.nginx.access() if " /socket.io/" in line["request"]]

    def upgrades(self) -> list[dict[str, str]]:
        """The websocket requests that nginx answered with 101 and that have closed."""
        return [
            line
            for line in self.socket_requests()
            if line["status"] == "101" and "transport=websocket" in line["request"]
        ]


@pytest.fixture
def balanced(start_server: StartServer, tmp_path: Path) -> Iterator[Callable[..., Balanced]]:
    """``balanced(balance=None, http_extra="")``: two gunicorn processes (one Redis prefix,
    TRUSTED_PROXIES=1) behind nginx rendered from the example; nginx is stopped (and its error
    log printed: pytest shows it for a failed test) before the processes stop."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light)")
    made: list[Nginx] = []

    def make(balance: str | None = None, http_extra: str = "") -> Balanced:
        port = servers.free_port()
        # The websocket client sends Origin: <the URL it connected to>, here nginx's.
        origins = f"http://allowed.example,http://127.0.0.1:{port}"
        backends = [start_server(TRUSTED_PROXIES="1", ALLOWED_ORIGINS=origins) for _ in range(2)]
        site = render_site(EXAMPLE.read_text(), [server.port for server in backends], port, balance)
        nginx = start_nginx(tmp_path / f"nginx-{port}", port, site, http_extra)
        made.append(nginx)
        return Balanced(nginx, backends)

    yield make
    problems = []
    for nginx in made:
        nginx.stop()
        print(nginx.describe())
        if NGINX_PROBLEM.search(nginx.text("error.log") + nginx.text("stderr.log")):
            problems.append(nginx.url)
    if problems:
        pytest.fail(f"alert or worse in the nginx log of {', '.join(problems)}")


@pytest.fixture
def connect(
    balanced: Callable[..., Balanced], listen: Callable[..., Listener]
) -> Callable[..., Listener]:
    """``connect(url, user, transports, route=None)``: a :class:`Listener` with a list of
    transports and, optionally, the sticky cookie; disconnected before nginx stops."""

    def make(url: str, user: str, transports: list[str], route: str | None = None) -> Listener:
        cookies = None if route is None else {ROUTE_COOKIE: route}
        return listen(url, user, transport=transports, cookies=cookies)

    return make


def post_webhook(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /webhook/notify at ``url``; the 201 answer's body."""
    response = webhook_at(url, body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


POLLING_UPGRADING = ["polling", "websocket"]
WEBSOCKET = ["websocket"]
POLLING = ["polling"]


def test_the_example_as_it_is_sticks_loopback_clients_to_one_process_and_upgrades(
    balanced: Callable[..., Balanced], connect: Callable[..., Listener]
) -> None:
    """``ip_hash`` unchanged: both loopback clients land on one process, the polling one upgrades
    through nginx, and a webhook through nginx also reaches a client on the other process
    (connected to it directly, as from another region's balancer)."""
    cluster = balanced()
    alice = new_user("alice")
    upgrading = connect(cluster.url, alice, POLLING_UPGRADING)
    on_websocket = connect(cluster.url, alice, WEBSOCKET)
    assert upgrading.transport == "websocket"
    assert on_websocket.transport == "websocket"

    counts = cluster.sockets()
    assert sorted(counts.values()) == [0, 2], counts
    sticky = next(server for server in cluster.backends if counts[server.port] == 2)
    other = next(server for server in cluster.backends if server is not sticky)
    elsewhere = connect(other.url, alice, WEBSOCKET)
    assert cluster.sockets() == {sticky.port: 2, other.port: 1}

    notification = post_webhook(cluster.url, {"recipientId": alice, "message": "via nginx"})[
        "notification"
    ]

    assert notification["status"] == "delivered"
    for listener in (upgrading, on_websocket, elsewhere):
        assert listener.wait_for([notification["id"]]) == set()
        assert listener.received == [notification]

    # nginx logs a websocket when it closes. Every request through nginx went to the one
    # process, and the upgrade of the polling session (101 to ``transport=websocket&sid=``)
    # and the direct websocket passed through it.
    upgrading.disconnect()
    on_websocket.disconnect()
    assert wait_until(lambda: len(cluster.upgrades()) == 2, 5.0), cluster.socket_requests()
    assert [line for line in cluster.upgrades() if "sid=" in line["request"]], cluster.upgrades()
    upstreams = {line["upstream"] for line in cluster.socket_requests()}
    assert upstreams == {f"127.0.0.1:{sticky.port}"}, cluster.socket_requests()


def test_sticky_by_cookie_spreads_clients_over_processes_and_they_all_get_their_notifications(
    balanced: Callable[..., Balanced], connect: Callable[..., Listener]
) -> None:
    """The example with ``hash $notify_route consistent;`` (its documented open-source
    alternative): alice (polling, upgrading) on one process, bob (websocket) and carol (polling
    only: many requests, all of which must stick) on the other, every one through nginx."""
    cluster = balanced(balance=COOKIE_HASH, http_extra=COOKIE_MAP)
    first, second = cluster.backends
    to_first, to_second = cluster.route_to(first), cluster.route_to(second)
    alice, bob, carol = new_user("alice"), new_user("bob"), new_user("carol")

    alice_socket = connect(cluster.url, alice, POLLING_UPGRADING, to_first)
    bob_socket = connect(cluster.url, bob, WEBSOCKET, to_second)
    carol_socket = connect(cluster.url, carol, POLLING, to_second)

    assert alice_socket.transport == "websocket"
    assert carol_socket.transport == "polling"
    assert cluster.sockets() == {first.port: 1, second.port: 2}

    # send_notification between users on different processes, both ways.
    to_bob = alice_socket.call("send_notification", {"recipientId": bob, "message": "hi bob"})
    to_alice = bob_socket.call("send_notification", {"recipientId": alice, "message": "hi alice"})
    assert to_bob["success"] is True, to_bob
    assert to_alice["success"] is True, to_alice
    assert to_bob["notification"]["status"] == "delivered"
    assert to_alice["notification"]["status"] == "delivered"
    assert bob_socket.wait_for([to_bob["notification"]["id"]]) == set()
    assert alice_socket.wait_for([to_alice["notification"]["id"]]) == set()

    # One webhook through nginx for all three.
    sent = post_webhook(cluster.url, {"recipientIds": [alice, bob, carol], "message": "to all"})
    by_recipient = {n["recipientId"]: n for n in sent["notifications"]}
    assert {n["status"] for n in by_recipient.values()} == {"delivered"}
    for user, listener in ((alice, alice_socket), (bob, bob_socket), (carol, carol_socket)):
        assert listener.wait_for([by_recipient[user]["id"]]) == set(), user
    assert alice_socket.received == [to_alice["notification"], by_recipient[alice]]
    assert bob_socket.received == [to_bob["notification"], by_recipient[bob]]
    assert carol_socket.received == [by_recipient[carol]]

    # Stickiness, request by request (nginx logs a websocket when it closes): every
    # /socket.io/ request of a cookie went to one process, the one the cookie was chosen for,
    # including alice's upgrade and carol's series of polling requests.
    assert cluster.sockets() == {first.port: 1, second.port: 2}
    for listener in (alice_socket, bob_socket, carol_socket):
        listener.disconnect()
    assert wait_until(lambda: len(cluster.upgrades()) == 2, 5.0), cluster.socket_requests()
    routed: dict[str, set[str]] = {}
    for line in cluster.socket_requests():
        routed.setdefault(line["route"], set()).add(line["upstream"])
    assert routed == {
        to_first: {f"127.0.0.1:{first.port}"},
        to_second: {f"127.0.0.1:{second.port}"},
    }, cluster.socket_requests()
    carol_polls = [
        line
        for line in cluster.socket_requests()
        if line["route"] == to_second and "transport=polling" in line["request"]
    ]
    assert len(carol_polls) >= 3, carol_polls


@needs_node
@pytest.mark.usefixtures("node_modules")
def test_the_javascript_suites_core_cases_pass_through_nginx(
    balanced: Callable[..., Balanced],
) -> None:
    """The JS contract suite and the seed README's snippet, with ``socket.io-client`` connecting
    through nginx (polling upgrading to websocket, and websocket only); the suite's
    cross-process case puts its second socket on the other process directly."""
    cluster = balanced()
    run_suite(
        {
            "NOTIFY_URL": cluster.url,
            "NOTIFY_URL_2": cluster.backends[1].url,
            "NOTIFY_JWT_SECRET": JWT_SECRET,
            "NOTIFY_API_KEY": API_KEY,
        },
        files=["contract.test.mjs", "seed_snippet.test.mjs"],
    )
    assert any(line["status"] == "101" for line in cluster.upgrades())
