"""Which streams may take the direct path, and request ids without a syscall each."""

from __future__ import annotations

import pytest

from notify.api.directframes import stream_codec
from notify.api.observe import _RequestIds


@pytest.mark.parametrize(
    ("content_type", "accept", "codec"),
    [
        ("application/connect+json", "", "json"),
        ("application/connect+json; charset=utf-8", "", "json"),
        ("Application/Connect+Proto", "identity", "proto"),
        ("application/connect+json", "gzip", None),  # connect-python compresses each message
        ("application/connect+proto", "identity, gzip", None),
        ("application/grpc-web+proto", "", None),  # its own framing of the end
        ("application/json", "", None),  # unary
    ],
)
def test_only_uncompressed_connect_streams_go_direct(
    content_type: str, accept: str, codec: str | None
) -> None:
    assert stream_codec(content_type, accept) == codec


def test_request_ids_are_random_16_hex_and_refilled() -> None:
    ids = _RequestIds()
    drawn = [ids() for _ in range(1500)]  # three refills of the pool
    assert len(set(drawn)) == 1500
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in drawn)
    ids.reset()
    assert ids() not in drawn
