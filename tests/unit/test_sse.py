"""The pieces of GET /v1/events that need no server: parsing, framing, redaction."""

from __future__ import annotations

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.observe import Outcome, redact_query
from notify.api.sse import end_bytes, event_bytes, heartbeat_comment, parse_request
from notify.core.errors import InvalidArgument
from notify.core.model import Counts
from notify.realtime.hub import CountsPush, DataChangePush, Heartbeat
from notify.service.live import LiveUpdate


def test_parameters_and_their_precedence() -> None:
    plain = parse_request([], b"access_token=abc&device_type=browser&resume_token=r")
    assert (plain.authorization, plain.device_type, plain.resume_token) == (
        "Bearer abc",
        pb.DEVICE_TYPE_BROWSER,
        "r",
    )
    # Last-Event-ID (the browser's newest id) wins over the URL's resume_token.
    resumed = parse_request([(b"last-event-id", b"newer")], b"resume_token=older")
    assert resumed.resume_token == "newer"
    assert parse_request([(b"last-event-id", b"")], b"resume_token=r").resume_token == "r"
    header = parse_request([(b"authorization", b"Bearer h")], b"")
    assert header.authorization == "Bearer h"
    assert parse_request([], b"access_token=").authorization is None
    assert parse_request([], b"").device_type == pb.DEVICE_TYPE_UNSPECIFIED
    assert parse_request([], b"device_type=DEVICE_TYPE_IOS").device_type == pb.DEVICE_TYPE_IOS
    assert parse_request([], b"device_type=Android").device_type == pb.DEVICE_TYPE_ANDROID
    assert parse_request([], b"device_type=7").device_type == 7  # refused when the stream opens
    assert parse_request([], b"unknown=1&access_token=a").authorization == "Bearer a"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ([(b"authorization", b"Bearer h")], b"access_token=q"),
        ([], b"access_token=a&access_token=b"),
        ([], b"device_type=toaster"),
        ([], b"%ff=1"),
        ([], b"&".join(b"x%d=1" % i for i in range(20))),
    ],
)
def test_ambiguous_or_unreadable_requests(headers: list[tuple[bytes, bytes]], query: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_request(headers, query)


def test_events_are_framed_with_kind_id_and_json() -> None:
    counts = event_bytes("s-1", CountsPush(Counts(unread=2, unseen=1, total=3)))
    assert counts == (
        b'event: counts\ndata: {"sessionId":"s-1","counts":'
        b'{"counts":{"unread":2,"unseen":1,"total":3}}}\n\n'
    )
    update = event_bytes("s-1", LiveUpdate((), ("gone",), "tok"))
    assert update.startswith(b"id: tok\nevent: update\ndata: {")
    assert update.endswith(b"}\n\n")
    assert update.count(b"\n") == 4
    change = event_bytes("s-1", DataChangePush("k", "doc:1", "doc"))
    assert change.startswith(b"event: data_change\ndata: ")
    assert b"id:" not in change
    assert event_bytes("s-1", Heartbeat(5)).startswith(b"event: heartbeat\n")
    assert heartbeat_comment(Heartbeat(1234)) == b": heartbeat 1234\n\n"


def test_the_end_event_is_connects_end_of_stream_json() -> None:
    assert end_bytes(None) == b"event: end\ndata: {}\n\n"
    error = ConnectError(Code.UNAVAILABLE, "bye")
    assert end_bytes(error) == (
        b'event: end\ndata: {"error": {"code": "unavailable", "message": "bye"}}\n\n'
    )


def test_metrics_read_the_code_of_the_end_event() -> None:
    for end, code in [
        (None, "ok"),
        (ConnectError(Code.RESOURCE_EXHAUSTED, "x"), "resource_exhausted"),
    ]:
        outcome = Outcome("sse")
        outcome.observe({"type": "http.response.start", "status": 200, "headers": []})
        outcome.observe({"type": "http.response.body", "body": b"retry: 1\n\n", "more_body": True})
        outcome.observe({"type": "http.response.body", "body": end_bytes(end), "more_body": False})
        assert outcome.code == code
    refused = Outcome("sse")
    refused.observe({"type": "http.response.start", "status": 409, "headers": []})
    body = b'{"code": "out_of_range", "message": "m"}'
    refused.observe({"type": "http.response.body", "body": body, "more_body": False})
    assert refused.code == "out_of_range"


@pytest.mark.parametrize(
    ("query", "redacted"),
    [
        (b"access_token=s3cret&device_type=browser", b"access_token=REDACTED&device_type=browser"),
        (b"a=1&access%5Ftoken=s3cret", b"a=1&access%5Ftoken=REDACTED"),
        (b"access_token=x&access_token=y", b"access_token=REDACTED&access_token=REDACTED"),
        (b"access_token", b"access_token=REDACTED"),
        (b"device_type=browser", b"device_type=browser"),
        (b"my_access_token=x", b"my_access_token=x"),
    ],
)
def test_access_tokens_are_redacted_from_the_query(query: bytes, redacted: bytes) -> None:
    assert redact_query(query) == redacted
