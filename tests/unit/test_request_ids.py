"""New request ids are ``uuid.uuid4().hex`` of the same random bytes, made without the UUID
object from bytes read ahead, and a forked child does not reuse its parent's bytes."""

from __future__ import annotations

import os
import uuid

import pytest

from app.observability import logging as notify_logging
from app.observability.logging import new_request_id

pytestmark = pytest.mark.unit


def test_an_id_is_uuid4_hex_of_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    block = bytes(range(256)) * 16
    monkeypatch.setattr(notify_logging.os, "urandom", lambda n: block[:n])
    notify_logging._random.clear()
    made = [new_request_id() for _ in range(256)]
    # Taken from the end of the block, 16 bytes at a time.
    expected = [
        uuid.UUID(bytes=block[4096 - 16 * (i + 1) : 4096 - 16 * i], version=4).hex
        for i in range(256)
    ]
    assert made == expected
    notify_logging._random.clear()


def test_ids_are_distinct_version_4_and_rfc_4122() -> None:
    made = {new_request_id() for _ in range(2000)}
    assert len(made) == 2000
    for text in made:
        parsed = uuid.UUID(hex=text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)


def test_a_forked_child_does_not_reuse_its_parents_bytes() -> None:
    new_request_id()  # bytes read ahead in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != new_request_id()
