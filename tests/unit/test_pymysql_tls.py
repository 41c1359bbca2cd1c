"""PyMySQL's default ("preferred") TLS context built once per process (app/patches/pymysql.py)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import pytest
from pymysql import connections

from app.patches import pymysql as pymysql_patch

pytestmark = pytest.mark.unit


@pytest.fixture
def installed() -> Iterator[None]:
    before = connections.Connection._create_ssl_ctx
    pymysql_patch.install()
    try:
        yield
    finally:
        connections.Connection._create_ssl_ctx = before  # type: ignore[method-assign]


def unconnected(**options: object) -> connections.Connection:
    return connections.Connection(host="127.0.0.1", defer_connect=True, **options)  # type: ignore[arg-type]


def test_connections_without_tls_options_share_one_context_with_upstreams_settings(
    installed: None,
) -> None:
    first, second = unconnected(), unconnected()
    assert first.ssl and not first._ssl_required  # still the preferred mode
    assert first.ctx is second.ctx
    upstream = pymysql_patch._upstream_create_ssl_ctx(first, {})
    for setting in ("verify_mode", "check_hostname", "verify_flags", "options", "protocol"):
        assert getattr(first.ctx, setting) == getattr(upstream, setting), setting
    assert first.ctx.verify_mode == ssl.CERT_NONE


def test_a_new_connection_no_longer_loads_the_ca_bundle(installed: None) -> None:
    unconnected()
    started = time.thread_time()
    for _ in range(10):
        unconnected()
    assert time.thread_time() - started < 0.02  # upstream: ~20 ms each


def test_explicit_tls_options_get_their_own_context(installed: None) -> None:
    shared = unconnected().ctx
    explicit = unconnected(ssl={"check_hostname": False, "verify_mode": False})
    assert explicit._ssl_required and explicit.ctx is not shared
    assert unconnected(ssl_disabled=True).ssl is False
