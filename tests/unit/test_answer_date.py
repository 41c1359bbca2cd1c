"""An answer's Date header formatted once a second (``date_header``), the same bytes as
pywsgi's ``format_date_time``."""

from __future__ import annotations

from typing import Any

import gevent.pywsgi
import gevent.socket
import pytest

import app.patches.gevent as patches
from app.patches.gevent import date_header
from tests.unit.test_idle_wait import read_answer, request, serve

pytestmark = pytest.mark.unit

upstream = gevent.pywsgi.format_date_time


@pytest.mark.parametrize(
    "timestamps",
    [
        [0.0, 0.5, 0.999, 1.0, 1.2, 0.3],
        [1_796_000_000.0, 1_796_000_000.99, 1_796_000_001.0, 1_796_000_000.5],
        [951_782_399.9, 951_782_400.0, 4_102_444_799.5, -1.5, -0.5, 0.0],
    ],
)
def test_the_value_is_pywsgis_for_every_second(timestamps: list[float]) -> None:
    for timestamp in timestamps:
        assert date_header(timestamp) == upstream(timestamp)


def test_answers_in_one_second_format_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    formatted: list[float] = []

    def counting(timestamp: float) -> Any:
        formatted.append(timestamp)
        return upstream(timestamp)

    monkeypatch.setattr(gevent.pywsgi, "format_date_time", counting)
    monkeypatch.setattr(patches, "format_date_time", counting)
    monkeypatch.setattr(patches, "_date", (-1, b""))
    server = serve()
    try:
        with gevent.socket.create_connection(("127.0.0.1", server.server_port)) as client:
            for n in range(8):
                client.sendall(request(f"/n{n}"))
                assert read_answer(client) == b"POST /n%d 0:" % n
    finally:
        server.stop()
    assert 1 <= len(formatted) <= 2  # upstream: eight
