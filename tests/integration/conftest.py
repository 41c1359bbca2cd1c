"""The Socket.IO test-client fixture of ``test_sockets`` (``open_socket``), for the other
integration modules that open sockets."""

from __future__ import annotations

from tests.integration.test_sockets import open_socket

__all__ = ["open_socket"]
