"""The checks the protocol overrides make on what a client sends (app/patches/)."""

from __future__ import annotations

import pytest

from app.observability import metrics
from app.observability.logging import FIELDS
from app.patches import engineio
from app.patches import socketio as socketio_patches

pytestmark = pytest.mark.unit


def test_the_log_fields_key_and_the_metric_kinds_are_the_ones_the_app_uses() -> None:
    assert engineio.LOG_FIELDS == FIELDS
    assert set(engineio.DESCRIPTIONS) == set(metrics.PROTOCOL_KINDS)


def test_a_long_polling_payload_decodes_every_packet_with_no_count_limit() -> None:
    body = "\x1e".join(["3"] + [f'42["e",{n}]' for n in range(40)] + ["bAQID"]).encode()
    packets = engineio.decode_payload(body)
    assert len(packets) == 42
    assert packets[-1].data == b"\x01\x02\x03"
    assert engineio.decode_payload(b"") == []


@pytest.mark.parametrize(
    "body",
    [b"abc", b"7", b"2", b"0", b"6", b"4a\x1e", b"b!!!", b"\xff\xfe", b"4ok\x1eabc"],
)
def test_a_payload_with_a_packet_a_client_never_sends_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        engineio.decode_payload(body)


def test_a_websocket_frame_may_be_the_upgrade_probe_but_not_an_unknown_type() -> None:
    assert engineio.well_formed("2probe", engineio.WEBSOCKET_PACKETS)
    assert not engineio.well_formed("2probe", engineio.POLLING_PACKETS)
    for frame in ("", "0", "6", "9", "x", "b==="):
        assert not engineio.well_formed(frame, engineio.WEBSOCKET_PACKETS), frame


class Decoded:
    def __init__(self, packet_type: int, data: object) -> None:
        self.packet_type, self.data = packet_type, data


@pytest.mark.parametrize(
    ("packet_type", "data", "accepted"),
    [
        (2, ["send_notification", {}], True),
        (2, [], False),
        (2, {}, False),
        (2, None, False),
        (2, [1], False),
        (3, [], True),
        (3, "x", False),
        (0, "any auth shape", True),
        (1, None, True),
        (4, {"message": "x"}, False),
        (7, None, False),
    ],
)
def test_socket_io_packets_are_checked_as_socket_io_parser_checks_them(
    packet_type: int, data: object, accepted: bool
) -> None:
    assert socketio_patches.well_formed(Decoded(packet_type, data)) is accepted
