"""The Redis Cluster URL and the routing mark of process ids (no Redis needed)."""

from __future__ import annotations

import pytest

from app.patches.socketio_redis import is_routed
from app.redis_client import cluster_options, is_cluster

pytestmark = pytest.mark.unit


def test_a_cluster_url_names_its_start_nodes_and_credentials() -> None:
    options = cluster_options("redis+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2:7001")
    assert [(n.host, n.port) for n in options["startup_nodes"]] == [
        ("10.0.0.1", 7000),
        ("10.0.0.2", 7001),
    ]
    assert (options["username"], options["password"]) == ("user", "p@ss")
    assert "ssl" not in options
    assert cluster_options("rediss+cluster://h:1")["ssl"] is True


@pytest.mark.parametrize(
    ("url", "cluster"),
    [
        ("redis+cluster://127.0.0.1:7000", True),
        ("REDIS+CLUSTER://127.0.0.1:7000", True),
        ("rediss+cluster://127.0.0.1:7000", True),
        ("redis://127.0.0.1:6379/0", False),
        ("rediss://127.0.0.1:6379/0", False),
        (None, False),
    ],
)
def test_only_cluster_schemes_are_clusters(url: str | None, cluster: bool) -> None:
    assert is_cluster(url) is cluster


def test_process_ids_of_routing_processes_are_marked() -> None:
    assert is_routed("r-1234-abcdef12")
    assert not is_routed("1234-abcdef12")  # an older version, or ROUTED_DELIVERY=0
