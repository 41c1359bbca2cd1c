"""A TCP proxy the test controls: between a server and MariaDB, it can play "database stopped".

``stop()`` looks like a MariaDB shut down cleanly: new connections are refused (the listening
socket is closed, so the kernel answers with a reset), nothing more a client sends reaches the
database, answers the database was already writing still reach the client for a short grace,
then every connection is closed. A statement whose bytes reached the database before the stop
therefore gets its answer (a COMMIT that was executed is answered), and one that did not is
never executed: "answered 503" and "stored" cannot both be true because of the proxy itself.
``start()`` listens on the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

GRACE = 0.3
CHUNK = 65536


class _Pair:
    """One client connection and its connection to the database, pumped by two threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.forward_client = True
        for source, target, upward in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pump, args=(source, target, upward), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, upward: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if upward and not self.forward_client:
                    break  # the database is stopping: nothing new reaches it
                target.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target`` until ``stop()``; ``start()`` again after."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.pairs: list[_Pair] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.accepted = 0
        self.start()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.accepted += 1
                self.pairs.append(_Pair(client, upstream))

    def stop(self) -> None:
        """Refuse new connections, stop forwarding requests, close everything after GRACE."""
        listener, self.listener = self.listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.forward_client = False
        time.sleep(GRACE)
        for pair in pairs:
            pair.close()

    def close(self) -> None:
        self.stop()
