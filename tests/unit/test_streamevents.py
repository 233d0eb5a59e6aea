"""Stream frames spliced from shared bytes are the frames protobuf and fastjson write."""

from __future__ import annotations

import random

import orjson
from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.cursors import encode_resume_token
from notify.core.model import Counts, Notification, Status
from notify.wire import fastjson, jsonrows, pbrows, prepared
from notify.wire.convert import counts_to_pb, notification_to_pb
from notify.wire.rowbytes import RowBytes
from notify.wire.streamevents import StreamEventWriter
from tests.unit.test_jsonrows import random_row

SESSIONS = ["a1b2c3d4e5f6-1", "x", "a1b2c3d4e5f6-" + "f" * 200, 'ünï"\\']


class Counting:
    def __init__(self, encode: object) -> None:
        self.encode = encode
        self.calls = 0

    def __call__(self, row: Notification) -> bytes:
        self.calls += 1
        return self.encode(row)  # type: ignore[operator, no-any-return]


def writer() -> tuple[StreamEventWriter, Counting, Counting]:
    json_rows, proto_rows = Counting(jsonrows.row_bytes), Counting(pbrows.row_bytes)
    return StreamEventWriter(RowBytes(json_rows), RowBytes(proto_rows)), json_rows, proto_rows


def expected_notification(session_id: str, row: Notification, change: int) -> pb.StreamEvent:
    return pb.StreamEvent(
        session_id=session_id,
        notification=pb.NotificationEvent(
            notification=notification_to_pb(row),
            resume_token=encode_resume_token(row.key, change),
        ),
    )


def expected_counts(session_id: str, counts: Counts) -> pb.StreamEvent:
    return pb.StreamEvent(session_id=session_id, counts=pb.CountsEvent(counts=counts_to_pb(counts)))


def frames(event: pb.StreamEvent) -> tuple[bytes, bytes]:
    proto = prepared.take(event, "proto")
    text = prepared.take(event, "json")
    assert proto is not None
    assert text is not None
    return proto, text


def test_notification_frames_are_the_messages_bytes_in_both_codecs() -> None:
    rng = random.Random(21)
    events, _, _ = writer()
    for number in range(300):
        row = random_row(rng)
        session_id = SESSIONS[number % len(SESSIONS)]
        change = rng.choice([0, 1, 2**40])
        token = encode_resume_token(row.key, change)
        proto, text = frames(events.notification(session_id, row, token))
        wanted = expected_notification(session_id, row, change)
        assert proto == wanted.SerializeToString(deterministic=True)
        assert orjson.loads(text) == orjson.loads(fastjson.to_json(wanted))
        assert list(orjson.loads(text)) == ["sessionId", "notification"]
        assert list(orjson.loads(text)["notification"]) == ["notification", "resumeToken"]


def test_a_fan_out_encodes_the_row_once_per_codec() -> None:
    row = random_row(random.Random(22))
    row.status = Status.DELIVERED
    events, json_rows, proto_rows = writer()
    sessions = [f"s-{n}" for n in range(1000)]
    for session_id in sessions:
        proto, text = frames(events.notification(session_id, row, encode_resume_token(row.key, 7)))
        assert proto == expected_notification(session_id, row, 7).SerializeToString(
            deterministic=True
        )
        assert orjson.loads(text)["sessionId"] == session_id
    assert json_rows.calls == proto_rows.calls == 1
    # The same row in a new state is encoded again: a frame never shows stale state.
    row.status = Status.READ
    proto, _ = frames(events.notification("s-0", row, encode_resume_token(row.key, 7)))
    assert proto == expected_notification("s-0", row, 7).SerializeToString(deterministic=True)
    assert proto_rows.calls == 2


def test_counts_frames_are_the_messages_bytes_in_both_codecs() -> None:
    events, _, _ = writer()
    shared = Counts(unread=3, unseen=1, total=2**31 - 1)
    for counts in (Counts(), shared, shared, Counts(unread=1, unseen=0, total=1)):
        for session_id in SESSIONS:
            proto, text = frames(events.counts(session_id, counts))
            wanted = expected_counts(session_id, counts)
            assert proto == wanted.SerializeToString(deterministic=True)
            assert text == fastjson.to_json(wanted)


def test_an_empty_session_id_is_left_out_as_protobuf_does() -> None:
    events, _, _ = writer()
    row = random_row(random.Random(23))
    proto, text = frames(events.notification("", row, encode_resume_token(row.key, 0)))
    assert proto == expected_notification("", row, 0).SerializeToString(deterministic=True)
    assert orjson.loads(text)["sessionId"] == ""
    proto, _ = frames(events.counts("", Counts()))
    assert proto == expected_counts("", Counts()).SerializeToString(deterministic=True)


def test_sse_events_from_kept_bytes_are_the_protobuf_paths() -> None:
    from notify.api.directframes import sse_frame
    from notify.api.sse import event_bytes
    from notify.realtime.hub import CountsPush
    from notify.service.live import LiveNotification

    writer_, _, _ = writer()
    rng = random.Random(7)
    for number in range(200):
        row = random_row(rng)
        session_id = SESSIONS[number % len(SESSIONS)]
        token = encode_resume_token(row.key, number) if number % 5 else ""
        item = LiveNotification(row, token)
        assert _sse(sse_frame(writer_, session_id, item)) == _sse(event_bytes(session_id, item))
        badge = CountsPush(Counts(unread=number, unseen=number // 2, total=number * 3))
        assert sse_frame(writer_, session_id, badge) == event_bytes(session_id, badge)


def _sse(event: bytes | None) -> tuple[list[bytes], object]:
    """An SSE event's field lines before ``data``, and its data's JSON value."""
    assert event is not None
    assert event.endswith(b"\n\n")
    lines = event[:-2].split(b"\n")
    assert len(lines) >= 2
    assert lines[-1].startswith(b"data: ")  # one data line: compact JSON has no line break
    return lines[:-1], orjson.loads(lines[-1][len(b"data: ") :])
