"""gevent-websocket's access line (``log_request``): formatted only when its logger writes INFO,
and then the same line as upstream's."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from geventwebsocket.handler import WebSocketHandler

from app.patches.gevent import TimeoutHandler

pytestmark = pytest.mark.unit


class Server:
    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger


def handler(cls: type, logger: logging.Logger, status: str) -> Any:
    made = cls.__new__(cls)
    made.server = Server(logger)
    made.status = status
    made.formatted = 0

    def format_request() -> str:
        made.formatted += 1
        return f"line {status}"

    made.format_request = format_request
    return made


@pytest.mark.parametrize("status", ["200 OK", "101 Switching Protocols"])
@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_the_line_is_upstreams_and_formatted_only_when_written(
    caplog: pytest.LogCaptureFixture, status: str, level: int
) -> None:
    logger = logging.getLogger("test.access_line")
    logger.setLevel(level)
    lines = []
    for cls in (WebSocketHandler, TimeoutHandler):
        caplog.clear()
        with caplog.at_level(level, logger.name):
            made = handler(cls, logger, status)
            made.log_request()
        lines.append([r.getMessage() for r in caplog.records])
        if cls is TimeoutHandler:
            written = level == logging.INFO and not status.startswith("101")
            assert made.formatted == int(written)
    assert lines[0] == lines[1]
